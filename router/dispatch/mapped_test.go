package dispatch

import (
	"context"
	"errors"
	"testing"

	"github.com/synchub/synchub/connectors"
	"github.com/synchub/synchub/mapping"
	"github.com/synchub/synchub/retry"
)

type upserts struct{ got []connectors.Record }

func (u *upserts) Upsert(_ context.Context, _ connectors.Gate, recs []connectors.Record) []error {
	u.got = append(u.got, recs...)
	return make([]error, len(recs))
}

func TestMappedTarget(t *testing.T) {
	m, err := mapping.Compile(mapping.Spec{"email": "lower(email)", "lastname": "lastName(name)"},
		map[string]any{"email": "", "name": ""})
	if err != nil {
		t.Fatal(err)
	}
	u := &upserts{}
	target := MappedTarget{Client: u, Mapping: m, KeyField: "email"}

	item, err := target.Prepare("user", []byte(`{"id":"u_1","email":"Ann@X.com","name":"Ann Lee"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if errs := target.Send(context.Background(), connectors.OpenGate{}, "user", []any{item}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if len(u.got) != 1 || u.got[0].Key != "ann@x.com" || u.got[0].Fields["lastname"] != "Lee" {
		t.Fatalf("upserted %+v", u.got)
	}

	for name, snapshot := range map[string]string{
		"no key":      `{"id":"u_2","email":"","name":"B"}`,
		"wrong type":  `{"id":"u_3","email":7,"name":"B"}`,
		"not json at": `{`,
	} {
		_, err := target.Prepare("user", []byte(snapshot), 0)
		var re *retry.Error
		if !errors.As(err, &re) || !retry.Terminal(err) {
			t.Errorf("%s: %v, want a terminal retry.Error", name, err)
		}
	}
}
