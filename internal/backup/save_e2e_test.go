package backup_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/kup-project/kup/internal/backup"
)

// TestDamagedSnapshotRefused: a truncated or bit-flipped snapshot fails
// Verify and Restore with an error that says what is wrong, and Restore
// leaves the target directory as it was.
func TestDamagedSnapshotRefused(t *testing.T) {
	good, err := os.ReadFile(sharedSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated mid-sector", good[:len(good)-1000], "truncated"},
		{"truncated to a sector boundary", good[:len(good)-4096], "damaged"},
		{"trailer cut off", good[:len(good)-32], "truncated"},
		{"empty", nil, "truncated"},
		{"bit flipped in the first page", flip(100), "damaged"},
		{"bit flipped in the middle", flip(len(good) / 2), "damaged"},
		{"bit flipped in the trailer", flip(len(good) - 5), "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bad.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := backup.Verify(path)
			t.Logf("Verify: %v", err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Verify: got %v, want an error naming %s and saying %q", err, path, tc.want)
			}
			dataDir := filepath.Join(dir, "restored")
			err = backup.Restore(context.Background(), path, dataDir, backup.RestoreOptions{})
			t.Logf("Restore: %v", err)
			if err == nil || !strings.Contains(err.Error(), "refusing to restore") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Restore: got %v, want a refusal saying %q", err, tc.want)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("Restore of a damaged snapshot left %s behind", dataDir)
			}
		})
	}
}

// TestRestoreIntoEmptyDirectory restores the shared snapshot into an
// existing empty directory and a new one, and refuses a non-empty one.
func TestRestoreIntoEmptyDirectory(t *testing.T) {
	snap := sharedSnapshot(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{empty, filepath.Join(dir, "new")} {
		if err := backup.Restore(context.Background(), snap, d, backup.RestoreOptions{Name: "m1", PeerURL: "http://127.0.0.1:2380"}); err != nil {
			t.Fatalf("Restore into %s: %v", d, err)
		}
		if _, err := os.Stat(filepath.Join(d, "member", "snap", "db")); err != nil {
			t.Errorf("restored directory %s has no database: %v", d, err)
		}
		assertMode(t, d, 0o700|os.ModeDir)
	}
	err := backup.Restore(context.Background(), snap, empty, backup.RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), empty) {
		t.Errorf("Restore into a non-empty directory: got %v, want a refusal naming it", err)
	}
}

// TestSaveCancelledMidStream cancels the context once the first bytes of
// the stream have arrived: Save fails with the cancellation and leaves
// neither a final file, a manifest nor a .part file.
func TestSaveCancelledMidStream(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "out")
	opts := saveOptions(c, filepath.Join(dir, "etcd.db"))
	var seen []int64
	opts.Progress = func(n int64) {
		seen = append(seen, n)
		cancel()
	}
	_, err := backup.Save(ctx, opts)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), etcdURL(c)) {
		t.Fatalf("Save: got %v, want context.Canceled naming the endpoint", err)
	}
	if len(seen) == 0 {
		t.Fatal("the stream was cancelled before any byte arrived: the test proves nothing")
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("a cancelled Save left %v in %s", got, dir)
	}
}

// TestSaveTargetFails: a target that cannot be created, is read-only or
// fills up fails the Save with an error that says so, and nothing stays
// behind.
func TestSaveTargetFails(t *testing.T) {
	c := cluster(t)
	for _, tc := range []struct {
		name  string
		mount string // tmpfs options; "" for no mount
		file  bool   // the backup directory's parent is a regular file
		want  string
	}{
		{name: "parent is a file", file: true, want: "not a directory"},
		{name: "read-only filesystem", mount: "ro,size=1m", want: "not writable"},
		{name: "filesystem full", mount: "size=256k", want: "no space left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "backups")
			if tc.file {
				if err := os.WriteFile(filepath.Join(root, "f"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
				dir = filepath.Join(root, "f", "backups")
			}
			if tc.mount != "" {
				mountTmpfs(t, dir, tc.mount)
			}
			path := filepath.Join(dir, "etcd.db")
			_, err := backup.Save(context.Background(), saveOptions(c, path))
			t.Logf("Save: %v", err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Save: got %v, want an error saying %q", err, tc.want)
			}
			if got := entries(t, dir); len(got) != 0 {
				t.Errorf("a failed Save left %v in %s", got, dir)
			}
		})
	}
}

// mountTmpfs mounts a small tmpfs at dir for the test, or skips where
// mounting is not allowed.
func mountTmpfs(t *testing.T, dir, opts string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var flags uintptr
	if strings.HasPrefix(opts, "ro,") {
		flags, opts = syscall.MS_RDONLY, strings.TrimPrefix(opts, "ro,")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): needs root", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
}

// TestSaveUnreachable: an endpoint that refuses connections, or accepts
// them and never answers, fails within the dial timeout with an error
// naming the endpoint and the flags to check.
func TestSaveUnreachable(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	// The kernel completes TCP handshakes for a listener nobody accepts
	// from: a member that hangs.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	for _, tc := range []struct {
		name, url string
		want      string
	}{
		{"refused", "http://" + closedAddr, "connection refused"},
		{"silent", "http://" + silent.Addr().String(), "did not answer"},
		{"silent over TLS", "https://" + silent.Addr().String(), "TLS handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			_, err := backup.Save(context.Background(), backup.SaveOptions{
				Etcd: backup.Endpoint{URL: tc.url, DialTimeout: time.Second},
				Path: filepath.Join(dir, "etcd.db"),
			})
			took := time.Since(start)
			t.Logf("Save after %s: %v", took.Round(time.Millisecond), err)
			if err == nil || !strings.Contains(err.Error(), tc.url) || !strings.Contains(err.Error(), "--etcd-endpoint") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Save: got %v, want an error naming %s, saying %q and suggesting --etcd-endpoint", err, tc.url, tc.want)
			}
			if took > 5*time.Second {
				t.Errorf("Save took %s with a 1s dial timeout", took)
			}
			if got := entries(t, dir); len(got) != 0 {
				t.Errorf("a failed Save left %v", got)
			}
		})
	}
}

// TestSaveRejectsBadOptions: options that cannot work fail before etcd is
// contacted, and a private key passed as a recipient is not echoed.
func TestSaveRejectsBadOptions(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.db")
	if err := os.WriteFile(existing, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts backup.SaveOptions
		want string
	}{
		{"no path", backup.SaveOptions{Etcd: backup.Endpoint{URL: "http://127.0.0.1:1"}}, "no output path"},
		{"no scheme", backup.SaveOptions{Etcd: backup.Endpoint{URL: "127.0.0.1:2379"}, Path: filepath.Join(dir, "a")}, "want one URL"},
		{"two endpoints", backup.SaveOptions{Etcd: backup.Endpoint{URL: "http://a:2379,http://b:2379"}, Path: filepath.Join(dir, "a")}, "exactly one endpoint"},
		{"TLS files with http", backup.SaveOptions{Etcd: backup.Endpoint{URL: "http://127.0.0.1:1", CACert: "ca.crt"}, Path: filepath.Join(dir, "a")}, "use an https://"},
		{"cert without key", backup.SaveOptions{Etcd: backup.Endpoint{URL: "https://127.0.0.1:1", Cert: "c.crt"}, Path: filepath.Join(dir, "a")}, "both --etcd-cert and --etcd-key"},
		{"missing CA file", backup.SaveOptions{Etcd: backup.Endpoint{URL: "https://127.0.0.1:1", CACert: filepath.Join(dir, "nope.crt")}, Path: filepath.Join(dir, "a")}, "loading TLS files"},
		{"existing backup", backup.SaveOptions{Etcd: backup.Endpoint{URL: "http://127.0.0.1:1"}, Path: existing}, "never replaced"},
		{"private key as recipient", backup.SaveOptions{Etcd: backup.Endpoint{URL: "http://127.0.0.1:1"}, Path: filepath.Join(dir, "a"), EncryptTo: []string{id.Recipient().String(), id.String()}}, "recipient #2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := backup.Save(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Errorf("the error echoes a private key: %v", err)
			}
		})
	}
	if data, _ := os.ReadFile(existing); string(data) != "an older backup" {
		t.Errorf("an existing backup was overwritten")
	}
}

// TestSaveEncrypted: with EncryptTo the only artifact is the age file;
// decrypted with the identity it is a snapshot that verifies and matches
// the manifest; another identity cannot open it.
func TestSaveEncrypted(t *testing.T) {
	c := cluster(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "offsite")
	path := filepath.Join(dir, "etcd.db")
	opts := saveOptions(c, path)
	opts.EncryptTo = []string{id.Recipient().String()}
	m, err := backup.Save(context.Background(), opts)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	if m.Path != path+".age" || !m.Encrypted || len(m.Recipients) != 1 || m.Recipients[0] != id.Recipient().String() {
		t.Errorf("manifest: path %s encrypted %v recipients %v", m.Path, m.Encrypted, m.Recipients)
	}
	if got, want := entries(t, dir), []string{"etcd.db.age", "etcd.db.age.json"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("backup directory holds %v, want %v (no plaintext)", got, want)
	}
	assertMode(t, m.Path, 0o600)
	enc, err := os.ReadFile(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(enc, []byte("age-encryption.org/v1\n")) || m.SHA256 != sha256File(t, m.Path) || m.Size != int64(len(enc)) {
		t.Errorf("the artifact is not the age file the manifest describes")
	}

	out := filepath.Join(t.TempDir(), "plain.db")
	if err := backup.Decrypt(m.Path, out, id); err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	assertMode(t, out, 0o600)
	st, err := backup.Verify(out)
	if err != nil {
		t.Fatalf("Verify of the decrypted snapshot: %v", err)
	}
	if st.SHA256 != m.PlaintextSHA256 || st.Size != m.PlaintextSize || st.Revision != m.Revision || st.TotalKeys != m.TotalKeys {
		t.Errorf("decrypted snapshot %+v does not match the manifest %+v", st, m)
	}

	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if err := backup.Decrypt(m.Path, filepath.Join(t.TempDir(), "x.db"), other); err == nil {
		t.Errorf("Decrypt with another identity succeeded")
	}
	if err := backup.Decrypt(m.Path, out, id); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Decrypt over an existing file: got %v, want a refusal", err)
	}
}
