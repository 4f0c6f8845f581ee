package marketo

import "strings"

// DefaultMapping returns the Marketo lead fields the hub fills from a user
// entity snapshot, as vendor field name → expr-lang expression over the
// snapshot's fields (id, name, email, roles, logins_count,
// organization_id, created_at, updated_at, …).
//
// Only standard lead fields are mapped: a custom field that does not exist
// in the customer's instance makes Marketo skip the whole lead (code
// 1006), so custom fields are left to per-customer mappings. Marketo does
// not require lastName, so a one-word name stays whole in firstName and
// lastName is left out (nil) rather than sent empty, which would blank a
// lastName typed in by a marketer. SplitName is the same rule in Go.
func DefaultMapping() map[string]string {
	return map[string]string{
		"email":     `email`,
		"firstName": `split(trim(name), " ")[0]`,
		"lastName":  `len(split(trim(name), " ")) > 1 ? join(split(trim(name), " ")[1:], " ") : nil`,
	}
}

// KeyField names the mapped field Marketo deduplicates on: the
// lookupField of Sync Leads, whose value is a Record's Key.
func KeyField() string { return "email" }

// SplitName splits a display name as DefaultMapping does: the first word
// is the first name, the rest (possibly empty) the last name.
func SplitName(name string) (first, last string) {
	name = strings.TrimSpace(name)
	first, last, _ = strings.Cut(name, " ")
	return first, last
}
