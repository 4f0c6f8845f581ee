package mapping_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/synchub/synchub/mapping"
)

func sampleUser() map[string]any {
	return map[string]any{
		"id": "u_1", "type": "user", "organization_id": "org_a", "version": 3,
		"name": "Ann Mary Lee", "email": "Ann@Example.com", "roles": []any{"admin"}, "logins_count": 7,
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name string
		spec mapping.Spec
		in   map[string]any
		want map[string]any
	}{
		{"plain fields", mapping.Spec{"email": "email", "external_id": "id"}, sampleUser(),
			map[string]any{"email": "Ann@Example.com", "external_id": "u_1"}},
		{"name split", mapping.Spec{"firstname": "firstName(name)", "lastname": "lastName(name)"}, sampleUser(),
			map[string]any{"firstname": "Ann Mary", "lastname": "Lee"}},
		{"single word is a last name", mapping.Spec{"FirstName": "firstName(name)", "LastName": "lastName(name)"},
			map[string]any{"name": "Cher"}, map[string]any{"FirstName": "", "LastName": "Cher"}},
		{"expressions", mapping.Spec{"email": "lower(email)", "admin": `"admin" in roles`, "active": "logins_count > 0", "label": `organization_id + "/" + id`},
			sampleUser(), map[string]any{"email": "ann@example.com", "admin": true, "active": true, "label": "org_a/u_1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mapping.Compile(tc.spec, sampleUser())
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Apply(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompileReportsEveryBadField(t *testing.T) {
	_, err := mapping.Compile(mapping.Spec{
		"ok":     "email",
		"typo":   "emial",
		"syntax": "split(name,",
	}, sampleUser())
	if err == nil {
		t.Fatal("bad mapping compiled")
	}
	var fe *mapping.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a FieldError", err)
	}
	for _, want := range []string{"field typo", "emial", "field syntax"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "field ok") {
		t.Errorf("a good field was reported: %v", err)
	}
}

func TestApplyFailsTheRecordOnARuntimeError(t *testing.T) {
	m, err := mapping.Compile(mapping.Spec{"second": `split(name, " ")[5]`}, sampleUser())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(sampleUser()); err == nil || !strings.Contains(err.Error(), "field second") {
		t.Fatalf("runtime error %v, want one naming the field", err)
	}
}

func TestMerge(t *testing.T) {
	got := mapping.Merge(mapping.Spec{"email": "email", "firstname": "firstName(name)", "phone": "phone"},
		mapping.Spec{"firstname": `split(name, " ")[0]`, "company": "organization_id", "phone": ""})
	want := mapping.Spec{"email": "email", "firstname": `split(name, " ")[0]`, "company": "organization_id"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
