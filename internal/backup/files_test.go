package backup

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// snapshotLike is a body of whole 512-byte sectors followed by its sha256,
// the shape of a snapshot etcd streams.
func snapshotLike(sectors int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	body := make([]byte, sectors*512)
	for i := range body {
		body[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(body)
	return append(body, sum[:]...)
}

// feed writes data to a trailerHash in chunks of the given sizes (cycled).
func feed(data []byte, chunks []int) *trailerHash {
	th := newTrailerHash()
	for i := 0; len(data) > 0; i++ {
		n := min(chunks[i%len(chunks)], len(data))
		th.Write(data[:n])
		data = data[n:]
	}
	return th
}

func TestTrailerHash(t *testing.T) {
	good := snapshotLike(9, 1)
	flipped := bytes.Clone(good)
	flipped[700] ^= 1
	for _, tc := range []struct {
		name   string
		data   []byte
		chunks []int
		want   string // "" for valid
	}{
		{"one write", good, []int{len(good)}, ""},
		{"byte by byte", good, []int{1}, ""},
		{"chunks around the trailer size", good, []int{31, 32, 33, 7}, ""},
		{"large chunks", good, []int{4096}, ""},
		{"trailer split across writes", good, []int{len(good) - 10, 10}, ""},
		{"flipped body bit", flipped, []int{100}, "damaged"},
		{"missing trailer", good[:len(good)-32], []int{512}, "truncated"},
		{"one byte short", good[:len(good)-1], []int{512}, "truncated"},
		{"sector short", good[512:], []int{512}, "damaged"},
		{"empty", nil, []int{1}, "truncated"},
		{"trailer only", good[len(good)-32:], []int{32}, "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := feed(tc.data, tc.chunks).check("x")
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// FuzzTrailerHash: however the stream is cut into writes, the verdict is
// the same as checking the whole buffer at once.
func FuzzTrailerHash(f *testing.F) {
	f.Add(snapshotLike(1, 2), uint8(3), uint8(40))
	f.Add([]byte("not a snapshot"), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, a, b uint8) {
		whole := len(data)%512 == 32
		if whole {
			sum := sha256.Sum256(data[:len(data)-32])
			whole = bytes.Equal(sum[:], data[len(data)-32:])
		}
		err := feed(data, []int{int(a) + 1, int(b) + 1}).check("x")
		if (err == nil) != whole {
			t.Fatalf("chunked verdict %v, whole-buffer verdict valid=%v", err, whole)
		}
	})
}

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{100 << 20, "100.0 MiB"}, {8 << 30, "8.0 GiB"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestParseRecipients(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN user@host"
	for _, tc := range []struct {
		name string
		in   []string
		n    int
		want string
	}{
		{"none", nil, 0, ""},
		{"age key", []string{id.Recipient().String()}, 1, ""},
		{"age and ssh keys", []string{" " + id.Recipient().String() + "\n", sshKey}, 2, ""},
		{"private key", []string{id.String()}, 0, "recipient #1"},
		{"garbage after a good one", []string{id.Recipient().String(), "age1notakey"}, 0, "recipient #2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRecipients(tc.in)
			if tc.want == "" {
				if err != nil || len(got) != tc.n {
					t.Fatalf("got %d recipients, %v; want %d", len(got), err, tc.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Errorf("error echoes a private key: %v", err)
			}
		})
	}
}

func TestCheckEmptyDir(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	full := filepath.Join(dir, "full")
	file := filepath.Join(dir, "file")
	for _, d := range []string{empty, full} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(full, "member"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		want string
	}{
		{filepath.Join(dir, "missing"), ""},
		{empty, ""},
		{full, "not empty"},
		{file, "checking data directory"},
	} {
		err := checkEmptyDir(tc.dir)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkEmptyDir(%s) = %v, want %q", tc.dir, err, tc.want)
		}
	}
}
