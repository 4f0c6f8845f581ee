package hubtest

import (
	"fmt"
	"math/rand/v2"
	"strings"

	salesforcefake "github.com/synchub/synchub/connectors/salesforce/fake"
)

// Names have two or three words, so the vendors' splits differ: the CRMs
// put the last word in the last name, Marketo the first word in the first.
var (
	givenNames = []string{"Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivo", "Jun"}
	middles    = []string{"Marie", "van", "de la", "José"}
	surnames   = []string{"Lee", "Okafor", "Schmidt", "Nakamura", "O'Brien", "Silva", "Kowalski", "Dubois"}
)

// RandomName is a person's name of two or three words.
func RandomName(r *rand.Rand) string {
	name := givenNames[r.IntN(len(givenNames))]
	if r.IntN(4) == 0 {
		name += " " + middles[r.IntN(len(middles))]
	}
	return name + " " + surnames[r.IntN(len(surnames))]
}

// VendorRecord is what vendor's fake should hold for a user under the
// connector's default mapping: the record's key in the fake's Records and
// its fields.
func VendorRecord(vendor, id, name, email string) (key string, fields map[string]string) {
	w := strings.Fields(name)
	first, last := strings.Join(w[:len(w)-1], " "), w[len(w)-1] // the CRMs' split
	switch vendor {
	case "hubspot":
		return email, map[string]string{"email": email, "firstname": first, "lastname": last}
	case "salesforce":
		return id, map[string]string{salesforcefake.ExternalIDField: id, "FirstName": first, "LastName": last, "Email": email}
	case "marketo":
		mf, ml, _ := strings.Cut(name, " ") // Marketo's: the first word is the first name
		return email, map[string]string{"email": email, "firstName": mf, "lastName": ml}
	case "mailchimp":
		return email, map[string]string{"email_address": email, "status": "subscribed", "FNAME": first, "LNAME": last}
	case "intercom":
		return id, map[string]string{"external_id": id, "role": "user", "name": name, "email": email}
	}
	panic("unknown vendor " + vendor)
}

// VendorDiff says how recs, a vendor fake's records, fail to hold a user's
// latest state under VendorRecord: no record under its key, or a field
// with another value. Nil when they hold it.
func VendorDiff(vendor string, recs map[string]map[string]any, id, name, email string) []string {
	key, fields := VendorRecord(vendor, id, name, email)
	rec, ok := recs[key]
	if !ok {
		return []string{fmt.Sprintf("%s: no record %s", id, key)}
	}
	var out []string
	for f, v := range fields {
		if got, ok := rec[f]; !ok || fmt.Sprint(got) != v {
			out = append(out, fmt.Sprintf("%s: %s = %v, want %q", key, f, got, v))
		}
	}
	return out
}
