package mirror

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bootforge/internal/image"
)

// hostilePrimary serves an index of one version, deb@1.0.0, whose
// manifest is m as given (not checked), and its files through serve, which
// gets the file's name and the request.
type hostilePrimary struct {
	*httptest.Server
	manifest []byte
}

func newHostilePrimary(t *testing.T, m image.Manifest, serve func(w http.ResponseWriter, r *http.Request, name string)) *hostilePrimary {
	t.Helper()
	manifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	index, err := json.Marshal(Index{Versions: []Version{{Name: "deb", Version: "1.0.0",
		Manifest: "images/deb/1.0.0/manifest.json", SHA256: sumOf(manifest)}}})
	if err != nil {
		t.Fatal(err)
	}
	p := &hostilePrimary{manifest: manifest}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bootforge/images.json":
			w.Write(index)
		case "/images/deb/1.0.0/manifest.json":
			w.Write(manifest)
		default:
			name, ok := strings.CutPrefix(r.URL.Path, "/images/deb/1.0.0/")
			if !ok {
				http.NotFound(w, r)
				return
			}
			serve(w, r, name)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *hostilePrimary) sync(t *testing.T, root string) (Result, error) {
	t.Helper()
	return syncFrom(t, p.URL, root)
}

// notInstalled checks that deb@1.0.0 is not in root.
func notInstalled(t *testing.T, root string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, image.Dir, "deb", "1.0.0")); !os.IsNotExist(err) {
		t.Errorf("deb@1.0.0 was installed (%v)", err)
	}
}

func debManifest(files ...image.File) image.Manifest {
	return image.Manifest{Name: "deb", Version: "1.0.0", Template: "linux", Files: files}
}

func fileOf(p string, data []byte) image.File {
	return image.File{Path: p, Size: int64(len(data)), SHA256: sumOf(data)}
}

func TestSyncHostileManifest(t *testing.T) {
	k := []byte("kernel")
	serveK := func(w http.ResponseWriter, r *http.Request, name string) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(k))
	}
	tests := []struct {
		name string
		m    image.Manifest
		want []string
	}{
		{"dotdot", debManifest(image.File{Path: "../../../escape", Size: 6, SHA256: sumOf(k)}), []string{"deb@1.0.0", "../../../escape"}},
		{"absolute", debManifest(image.File{Path: "/tmp/escape", Size: 6, SHA256: sumOf(k)}), []string{"deb@1.0.0", "/tmp/escape"}},
		{"nul", debManifest(image.File{Path: "a\x00b", Size: 6, SHA256: sumOf(k)}), []string{"deb@1.0.0"}},
		{"twice", debManifest(fileOf("vmlinuz", k), fileOf("vmlinuz", k)), []string{"deb@1.0.0", "vmlinuz", "twice"}},
		{"negative", debManifest(image.File{Path: "vmlinuz", Size: -1, SHA256: sumOf(k)}), []string{"deb@1.0.0", "vmlinuz", "negative"}},
		{"bad digest", debManifest(image.File{Path: "vmlinuz", Size: 6, SHA256: "../../x"}), []string{"deb@1.0.0", "vmlinuz", "sha256"}},
		{"itself", debManifest(fileOf("manifest.json", k)), []string{"deb@1.0.0", "manifest"}},
		{"another version", image.Manifest{Name: "deb", Version: "2.0.0", Files: []image.File{fileOf("vmlinuz", k)}}, []string{"deb@1.0.0", "deb@2.0.0"}},
		{"huge", debManifest(image.File{Path: "vmlinuz", Size: 1 << 40, SHA256: sumOf(k)}), []string{"deb@1.0.0", "vmlinuz", "1099511627776 bytes", "got 6 bytes"}},
		{"max size", debManifest(image.File{Path: "vmlinuz", Size: 1<<63 - 1, SHA256: sumOf(k)}), []string{"deb@1.0.0", "vmlinuz", "bytes"}},
		{"short", debManifest(image.File{Path: "vmlinuz", Size: 3, SHA256: sumOf(k)}), []string{"deb@1.0.0", "vmlinuz", "3 bytes"}},
		{"file and dir", debManifest(fileOf("a", k), fileOf("a/b", k)), []string{"deb@1.0.0", "a/b is below a"}},
		{"long name", debManifest(fileOf(strings.Repeat("x", 300), k)), []string{"deb@1.0.0: xxxx", "file name too long"}},
		{"same digest, two sizes", debManifest(fileOf("initrd", k), image.File{Path: "vmlinuz", Size: 100, SHA256: sumOf(k)}), []string{"deb@1.0.0", "vmlinuz", "100 bytes", "initrd", "same sha256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newHostilePrimary(t, tt.m, serveK)
			top := t.TempDir()
			root := filepath.Join(top, "root")
			res, err := p.sync(t, root)
			if err == nil {
				t.Fatalf("sync: no error; installed %v", res.Installed)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			t.Logf("%v", err)
			if strings.Contains(err.Error(), image.MirrorWorkPrefix) {
				t.Errorf("error %q names the sync's stage, which is gone after it", err)
			}
			notInstalled(t, root)
			ents, _ := os.ReadDir(top)
			if len(ents) != 1 {
				t.Errorf("written beside the root: %v", ents)
			}
		})
	}
}

// hostile answers to a file's GET.
func TestSyncHostileAnswers(t *testing.T) {
	k := bytes.Repeat([]byte("kernel.."), 1000)
	tests := []struct {
		name    string
		partial int // bytes of the file left by an earlier sync
		serve   func(w http.ResponseWriter, r *http.Request)
		ok      bool
		want    []string
	}{
		{"206 without Range", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 0-9/8000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(k[:10])
		}, false, []string{"deb@1.0.0", "206"}},
		{"200 to Range", 100, func(w http.ResponseWriter, r *http.Request) {
			w.Write(k)
		}, true, nil},
		// A proxy that answers every Range with the whole file as a 206:
		// the partial file cannot be resumed from it, and goes; the file
		// is fetched whole. Before, the partial file stayed and every
		// later sync asked for the same range, failed with "206 Partial
		// Content", and never installed the version.
		{"206 elsewhere", 100, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Range") == "" {
				w.Write(k)
				return
			}
			w.Header().Set("Content-Range", "bytes 0-7999/8000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(k)
		}, true, nil},
		{"206 right start, full body", 100, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 100-7999/8000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(k)
		}, true, nil}, // the mismatch spoils the resume; the whole file is fetched again
		{"longer", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Write(append(k, 'x'))
		}, false, []string{"deb@1.0.0", "vmlinuz", "8000 bytes", "8001 bytes"}},
		{"shorter", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Write(k[:7999])
		}, false, []string{"deb@1.0.0", "vmlinuz", "8000 bytes", "7999 bytes"}},
		{"other bytes", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("x"), 8000))
		}, false, []string{"deb@1.0.0", "vmlinuz", "sha256"}},
		{"short with length", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(8000))
			w.Write(k[:10])
		}, false, []string{"deb@1.0.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attempts := 0
			p := newHostilePrimary(t, debManifest(fileOf("vmlinuz", k)), func(w http.ResponseWriter, r *http.Request, name string) {
				attempts++
				if attempts > 1 && tt.ok {
					http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(k))
					return
				}
				tt.serve(w, r)
			})
			root := t.TempDir()
			partial := filepath.Join(root, image.Dir, PartialDir)
			if tt.partial > 0 {
				os.MkdirAll(partial, 0o700)
				os.WriteFile(filepath.Join(partial, sumOf(k)), k[:tt.partial], 0o600)
			}
			_, err := p.sync(t, root)
			t.Logf("%v", err)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(root, image.Dir, "deb", "1.0.0", "vmlinuz"))
				if err != nil || !bytes.Equal(got, k) {
					t.Fatalf("installed vmlinuz: %v, %d bytes, not the primary's", err, len(got))
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			notInstalled(t, root)
			if b, err := os.ReadFile(filepath.Join(partial, sumOf(k))); err == nil && !bytes.Equal(b, k[:len(b)]) {
				t.Errorf("the partial file holds %d bytes that are not the file's start", len(b))
			}
		})
	}
}

// A partial file is only ever one that a sync wrote. Anything else under
// its name in .mirror-partial (a symbolic link to a file outside the
// root, a FIFO) is removed, never followed: before, the sync opened the
// link's target read-write, appended the primary's bytes to it (a file
// outside the root, such as /etc/passwd), and then truncated it.
func TestSyncPartialNotFollowed(t *testing.T) {
	k := bytes.Repeat([]byte("kernel.."), 1000)
	p := newHostilePrimary(t, debManifest(fileOf("vmlinuz", k)), func(w http.ResponseWriter, r *http.Request, name string) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(k))
	})
	const was = "root:x:0:0:root:/root:/bin/bash\n"
	for name, plant := range map[string]func(p, outside string) error{
		"symlink": func(p, outside string) error { return os.Symlink(outside, p) },
		"fifo":    func(p, _ string) error { return unix.Mkfifo(p, 0o600) },
	} {
		t.Run(name, func(t *testing.T) {
			outside := filepath.Join(t.TempDir(), "passwd")
			if err := os.WriteFile(outside, []byte(was), 0o644); err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			partial := filepath.Join(root, image.Dir, PartialDir)
			if err := os.MkdirAll(partial, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := plant(filepath.Join(partial, sumOf(k)), outside); err != nil {
				t.Fatal(err)
			}
			_, err := p.sync(t, root)
			if b, rerr := os.ReadFile(outside); rerr != nil || string(b) != was {
				t.Fatalf("the file the partial name linked to, outside the root, is now %q (%v)", b, rerr)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(root, image.Dir, "deb", "1.0.0", "vmlinuz"))
			if err != nil || !bytes.Equal(got, k) {
				t.Fatalf("installed vmlinuz: %v, %d bytes, not the primary's", err, len(got))
			}
		})
	}
}

// An index that lists a name twice (the primary has one active version of
// each name) or a digest in upper case is refused as a whole, before any
// version is installed. Before, deb@1.0.0 listed twice with two digests
// installed the first and refused the second telling the operator to
// remove the version just installed (image gc); an upper-case digest was
// refused as a mismatch that showed the same digest twice.
func TestFetchIndexRefuses(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	v := func(name, version, sha string) Version {
		return Version{Name: name, Version: version, Manifest: "images/" + name + "/" + version + "/manifest.json", SHA256: sha}
	}
	tests := []struct {
		name string
		vs   []Version
		want string
	}{
		{"version twice", []Version{v("deb", "1.0.0", sum), v("deb", "1.0.0", strings.Repeat("cd", 32))}, "versions[1]: deb is listed twice (deb@1.0.0 and deb@1.0.0)"},
		{"name twice", []Version{v("deb", "1.0.0", sum), v("win", "1.0.0", sum), v("deb", "2.0.0", sum)}, "versions[2]: deb is listed twice (deb@1.0.0 and deb@2.0.0)"},
		{"upper case", []Version{v("deb", "1.0.0", strings.ToUpper(sum))}, "versions[0]: sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			index, err := json.Marshal(Index{Versions: tt.vs})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/bootforge/images.json" {
					t.Errorf("GET %s after the index", r.URL.Path)
				}
				w.Write(index)
			}))
			defer srv.Close()
			root := t.TempDir()
			_, err = syncFrom(t, srv.URL, root)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("sync: %v; want an error with %q", err, tt.want)
			}
			notInstalled(t, root)
		})
	}
}

// A version directory on the mirror without a manifest (files copied in
// by hand, a removal cut short) is refused before anything is fetched,
// saying so. Before, the sync fetched every file of the version and then
// failed with "appeared in ... during the sync", which it had not.
func TestSyncVersionDirWithoutManifest(t *testing.T) {
	k := bytes.Repeat([]byte("kernel.."), 1000)
	var gets atomic.Int32
	p := newHostilePrimary(t, debManifest(fileOf("vmlinuz", k)), func(w http.ResponseWriter, r *http.Request, name string) {
		gets.Add(1)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(k))
	})
	root := t.TempDir()
	dir := filepath.Join(root, image.Dir, "deb", "1.0.0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("copied by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := p.sync(t, root)
	if err == nil || !strings.Contains(err.Error(), "deb@1.0.0: "+dir+" exists without a manifest.json") {
		t.Fatalf("sync: %v; want it to say %s has no manifest", err, dir)
	}
	if n := gets.Load(); n != 0 {
		t.Errorf("the sync fetched %d files of a version it could not install", n)
	}
}

// .mirror-partial that is a symbolic link (to a directory outside the
// root) is refused, not written through: before, the sync's partial
// files went into the link's target.
func TestSyncPartialDirNotFollowed(t *testing.T) {
	k := bytes.Repeat([]byte("kernel.."), 1000)
	p := newHostilePrimary(t, debManifest(fileOf("vmlinuz", k)), func(w http.ResponseWriter, r *http.Request, name string) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(k))
	})
	root, outside := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, image.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, image.Dir, PartialDir)); err != nil {
		t.Fatal(err)
	}
	_, err := p.sync(t, root)
	if left, _ := os.ReadDir(outside); len(left) != 0 {
		t.Errorf("the sync wrote %v into %s, outside the root", left, outside)
	}
	if err == nil || !strings.Contains(err.Error(), PartialDir+" is a symbolic link") {
		t.Fatalf("sync: %v; want it refused", err)
	}
	notInstalled(t, root)
}
