package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, errOut: &errb})
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	if code, _, _ := runCLI(t); code != exitUsage {
		t.Errorf("no command: exit %d, want %d", code, exitUsage)
	}
	if code, _, stderr := runCLI(t, "frobnicate"); code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "run", "--no-such-flag"); code != exitUsage {
		t.Errorf("bad flag: exit %d, want %d", code, exitUsage)
	}
	if code, out, _ := runCLI(t, "version"); code != exitOK || !strings.HasPrefix(out, "synchub ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, _, _ := runCLI(t, "run", "--help"); code != exitOK {
		t.Errorf("--help: exit %d", code)
	}
}

func TestConfigValidateReportsEveryProblemWithLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "kafka:\n  partitions: 0\n  colour: blue\ncustomers:\n  - id: a\n    connectors:\n      webhook:\n        enabled: true\n        url: not-a-url\n        secret_env: SYNCHUB_TEST_UNSET_VAR\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "config", "validate", "--config", path)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d", code, exitFailure)
	}
	for _, want := range []string{"line 2", "line 3", `"colour"`, "line 9", "line 10", "SYNCHUB_TEST_UNSET_VAR"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("output lacks %q:\n%s", want, stderr)
		}
	}
}

func TestExampleConfigValidates(t *testing.T) {
	for _, v := range []string{"SYNCHUB_ADMIN_TOKEN", "ACME_WEBHOOK_SECRET", "GLOBEX_WEBHOOK_SECRET"} {
		t.Setenv(v, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	}
	code, out, stderr := runCLI(t, "config", "validate", "--config", "../../configs/synchub.yaml")
	if code != exitOK || !strings.Contains(out, "ok (2 customers)") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
}
