package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// run executes kup with args as main would, returning stdout and the exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String() + errOut.String(), exitCode(err)
}

// runErr is run with the error main would print appended.
func runErr(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		out.WriteString("Error: " + err.Error())
	}
	return out.String(), exitCode(err)
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"version"}, exitOK, "kup "},
		{[]string{"versions", "--from", "v1.33.9", "--to", "v1.37.2"}, exitOK, "hop 4: control plane v1.36.3 → v1.37.2"},
		{[]string{"versions", "--from", "v1.37.2", "--to", "v1.36.3"}, exitError, ""},
		{[]string{"versions", "--from", "v1.36.3", "--to", "v1.36.3"}, exitError, ""},
		{[]string{"versions", "--from", "v1.36.3", "--to", "v1.45.0"}, exitError, ""},
		{[]string{"versions", "--from", "v1.36.3", "--to", "latest"}, exitUsage, ""},
		{[]string{"versions", "--from", "v1.36.3", "--to", "v1.37.2", "-o", "xml"}, exitUsage, ""},
		{[]string{"versions", "--no-such-flag"}, exitUsage, ""},
		{[]string{"sandbox", "up", "--version", "1.36"}, exitError, ""},
		// kup plan checks its wave flags before it reads a cluster, as apply does.
		{[]string{"plan", "--to", "v1.37.2", "--server", "https://127.0.0.1:1", "--max-unavailable", "lots"}, exitUsage, `--max-unavailable "lots"`},
		{[]string{"plan", "--to", "v1.37.2", "--server", "https://127.0.0.1:1", "--budget-rounds", "0"}, exitUsage, "--budget-rounds 0: want 1 to"},
	} {
		out, code := runErr(t, tc.args...)
		if code != tc.code {
			t.Errorf("kup %s: exit %d, want %d (output %q)", strings.Join(tc.args, " "), code, tc.code, out)
		}
		if tc.want != "" && !strings.Contains(out, tc.want) {
			t.Errorf("kup %s: output lacks %q:\n%s", strings.Join(tc.args, " "), tc.want, out)
		}
	}
}

// TestVersionsJSONCarriesReason: with -o json, the reason for a refusal is
// in the JSON, with a stable code.
func TestVersionsJSONCarriesReason(t *testing.T) {
	out, code := run(t, "versions", "--from", "v1.37.2", "--to", "v1.36.3", "-o", "json")
	if code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	var res struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if res.Error.Code != "not-upgradable" || !strings.Contains(res.Error.Message, "downgrade") {
		t.Errorf("JSON error = %+v, want code not-upgradable and a message about the downgrade", res.Error)
	}
}

// TestNoKubeconfig: with no kubeconfig found, client-go falls back to
// http://localhost:8080; kup names the files it looked for instead of a
// refused connection to a server nobody named.
func TestNoKubeconfig(t *testing.T) {
	home := t.TempDir()
	empty := filepath.Join(home, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(home, "dead")
	if err := os.WriteFile(dead, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(home, "typo")
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"", "no kubeconfig found: " + clientcmd.RecommendedHomeFile + " does not exist, and KUBECONFIG is not set"},
		{missing, `no kubeconfig found: KUBECONFIG is "` + missing + `"; ` + missing + " does not exist"},
		{empty + ":" + missing, empty + " defines no cluster, " + missing + " does not exist"},
		{dead, "https://127.0.0.1:1"}, // a kubeconfig: its server is named
	} {
		if _, err := os.Stat(clientcmd.RecommendedHomeFile); tc.env == "" && err == nil {
			continue // this machine has a kubeconfig
		}
		t.Setenv("KUBECONFIG", tc.env)
		for _, args := range [][]string{{"versions"}, {"plan", "--to", "v1.37.2"}, {"status"}, {"verify"}} {
			out, code := runErr(t, args...)
			if code == exitOK || !strings.Contains(out, tc.want) || strings.Contains(out, "localhost:8080") {
				t.Errorf("KUBECONFIG=%q kup %s: exit %d, output %q; want an error saying %q", tc.env, strings.Join(args, " "), code, out, tc.want)
			}
		}
	}
}

func TestMain(m *testing.M) { sandboxtest.Main(m) }
