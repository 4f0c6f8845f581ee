package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sandboxConfig = "../../configs/sandbox.yaml"

// testWebhookSecret is a made-up secret for the tests.
const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// setSandboxEnv sets the variables configs/sandbox.yaml names to made-up
// values.
func setSandboxEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{
		"SANDBOX_HUBSPOT_TOKEN", "SANDBOX_SALESFORCE_CLIENT_ID", "SANDBOX_SALESFORCE_CLIENT_SECRET",
		"SANDBOX_SALESFORCE_REFRESH_TOKEN", "SANDBOX_MARKETO_CLIENT_ID", "SANDBOX_MARKETO_CLIENT_SECRET",
		"SANDBOX_INTERCOM_TOKEN",
	} {
		t.Setenv(v, "test-secret-value")
	}
	t.Setenv("SANDBOX_MAILCHIMP_API_KEY", "test-secret-value-us7")
	t.Setenv("SANDBOX_WEBHOOK_SECRET", testWebhookSecret)
}

func TestSandboxConfigValidates(t *testing.T) {
	setSandboxEnv(t)
	code, out, stderr := runCLI(t, "config", "validate", "--config", sandboxConfig)
	if code != exitOK || !strings.Contains(out, "ok (6 customers)") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
}

const testUser = `{"id":"u_1","type":"user","organization_id":"org_acme","version":3,
"created_at":"2026-11-25T10:00:00Z","updated_at":"2026-11-25T11:00:00Z","source":{"partition":0,"offset":7},
"name":"Ann Marie Lee","email":"ann@example.com","roles":["admin"],"logins_count":2,"logins_failed_count":0,
"last_login_at":"2026-11-25T11:00:00Z","recent_logins":[],"recent_failed_logins":[]}`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func assertContains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestMappingTestHubSpot(t *testing.T) {
	setSandboxEnv(t)
	entity := writeFile(t, "user.json", testUser)
	code, out, stderr := runCLI(t, "mapping", "test", "--config", sandboxConfig,
		"--customer", "org_hubspot", "--connector", "hubspot", "--entity", entity)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	assertContains(t, out,
		"# hubspot request 1 of 1 for org_hubspot (the sandbox fake answered 200)\n",
		"\nPOST /crm/v3/objects/contacts/batch/upsert\nHost: 127.0.0.1:7100\n",
		"\nAuthorization: Bearer ****\n",
		"\nContent-Type: application/json\n",
		`"idProperty": "email",`,
		`"id": "ann@example.com",`,
		// The defaults split the name; the customer's override adds company.
		`"properties": {
        "company": "org_acme",
        "email": "ann@example.com",
        "firstname": "Ann Marie",
        "lastname": "Lee"
      }`,
	)
	if strings.Contains(out, "test-secret-value") || strings.Contains(out, "pat-na1") {
		t.Errorf("output shows a credential:\n%s", out)
	}
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
}

func TestMappingTestWebhook(t *testing.T) {
	setSandboxEnv(t)
	entity := writeFile(t, "user.json", testUser)
	outFile := filepath.Join(t.TempDir(), "req.txt")
	code, out, stderr := runCLI(t, "mapping", "test", "--config", sandboxConfig,
		"--customer", "org_webhook", "--connector", "webhook", "--entity", entity, "--out", outFile)
	if code != exitOK || out != "" {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	assertContains(t, got,
		"# webhook request 1 of 1 for org_webhook (the sandbox fake answered 204)\n",
		"\nPOST /hooks/org_webhook\nHost: 127.0.0.1:7105\n",
		"\nWebhook-Id: msg_user_u_1_v3\n",
		"\nWebhook-Signature: v1,",
		"\nWebhook-Timestamp: ",
		"{\n  \"type\": \"user.updated\",\n  \"timestamp\": \"2026-11-25T11:00:00Z\",\n  \"data\": {\n    \"id\": \"u_1\",",
		`"email": "ann@example.com",`,
		`"roles": [
      "admin"
    ],`,
	)
	if strings.Contains(got, strings.TrimPrefix(testWebhookSecret, "whsec_")) {
		t.Errorf("output shows the secret:\n%s", got)
	}
}

func TestMappingTestMailchimpUsesCustomersList(t *testing.T) {
	setSandboxEnv(t)
	entity := writeFile(t, "user.json", testUser)
	code, out, stderr := runCLI(t, "mapping", "test", "--config", sandboxConfig,
		"--customer", "org_mailchimp", "--connector", "mailchimp", "--entity", entity)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	// md5("ann@example.com")
	assertContains(t, out,
		"(the sandbox fake answered 200)",
		"\nPUT /3.0/lists/sandbox/members/257c57037d384ae37ea27a07e8a01665\n",
		"\nAuthorization: Basic ****\n",
		`"merge_fields": {
    "FNAME": "Ann Marie",
    "LNAME": "Lee"
  },`,
	)
}

func TestMappingTestErrors(t *testing.T) {
	setSandboxEnv(t)
	entity := writeFile(t, "user.json", testUser)
	badMapping := writeFile(t, "bad.yaml", `customers:
  - id: org_a
    connectors:
      hubspot:
        enabled: true
        token_env: SANDBOX_HUBSPOT_TOKEN
        mapping:
          contact:
            company: organisation_id
`)
	failingMapping := writeFile(t, "fails.yaml", `customers:
  - id: org_a
    connectors:
      hubspot:
        enabled: true
        token_env: SANDBOX_HUBSPOT_TOKEN
        mapping:
          contact:
            age: int(email)
`)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown customer", []string{"--config", sandboxConfig, "--customer", "org_nope", "--connector", "hubspot"}, exitFailure,
			`unknown customer "org_nope" (the config has org_hubspot, org_salesforce,`},
		{"unknown connector", []string{"--config", sandboxConfig, "--customer", "org_hubspot", "--connector", "zendesk"}, exitFailure,
			`unknown connector "zendesk" (want one of webhook, hubspot,`},
		{"not enabled", []string{"--config", sandboxConfig, "--customer", "org_hubspot", "--connector", "webhook"}, exitFailure,
			"customer org_hubspot does not have connector webhook enabled"},
		{"mapping does not compile", []string{"--config", badMapping, "--customer", "org_a", "--connector", "hubspot"}, exitFailure,
			"customer org_a, connector hubspot, mapping contact: field company: unknown name organisation_id"},
		{"mapping fails on the entity", []string{"--config", failingMapping, "--customer", "org_a", "--connector", "hubspot"}, exitFailure,
			"customer org_a, connector hubspot: field age:"},
		{"missing flag", []string{"--config", sandboxConfig, "--customer", "org_hubspot"}, exitUsage,
			"--connector is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"mapping", "test"}, tc.args...)
			if tc.name != "missing flag" {
				args = append(args, "--entity", entity)
			}
			code, out, stderr := runCLI(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s\nstdout %s", code, tc.code, tc.want, stderr, out)
			}
		})
	}
	if code, _, _ := runCLI(t, "mapping"); code != exitUsage {
		t.Errorf("mapping without test: exit %d, want %d", code, exitUsage)
	}
}
