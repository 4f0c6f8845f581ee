package hubspot

// DefaultMapping maps HubSpot contact properties to expr-lang expressions
// over the user entity snapshot (id, name, email, roles, logins_count,
// organization_id, created_at, updated_at, …), as package mapping
// compiles them.
//
// Only HubSpot's built-in contact properties are used: a batch upsert
// naming a property the portal lacks fails the input with
// VALIDATION_ERROR, so id, roles and the like need custom properties the
// customer creates first and maps themselves. The name is split with
// mapping's firstName/lastName (last word is the last name), the split
// every CRM connector shares; HubSpot requires neither part, so a
// one-word name landing in lastname is harmless.
func DefaultMapping() map[string]string {
	return map[string]string{
		"email":     "email",
		"firstname": "firstName(name)",
		"lastname":  "lastName(name)",
	}
}

// KeyField is the mapped property that is the upsert key (the batch
// upsert's idProperty): Record.Key must hold its value.
func KeyField() string { return "email" }
