package intercom

// DefaultMapping maps Intercom contact fields to expr-lang expressions over
// the user entity snapshot (id, name, email, roles, logins_count,
// organization_id, created_at, updated_at, …).
//
//   - role is always "user": only users carry an external_id, which is the
//     upsert key (leads cannot be found by it).
//   - Intercom keeps the full name in one field, so name is not split.
//   - signed_up_at is unix seconds, as Intercom wants; created_at is the
//     snapshot's RFC 3339 time.
//
// roles, logins_count and organization_id are left out: they would go in
// custom_attributes, which must first be created in the workspace
// (an unknown attribute is a 400 parameter_not_found).
func DefaultMapping() map[string]string {
	return map[string]string{
		"role":         `"user"`,
		"external_id":  "id",
		"email":        "email",
		"name":         "name",
		"signed_up_at": "date(created_at).Unix()",
	}
}

// KeyField is the mapped field whose value is Record.Key.
func KeyField() string { return "external_id" }
