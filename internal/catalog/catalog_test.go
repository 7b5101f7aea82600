package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/blob"
	"bootforge/internal/image"
	"bootforge/internal/store"
	"bootforge/internal/store/storetest"
)

// fixture is a served root, a data dir and a real store.
type fixture struct {
	root, data string
	db         *store.SQLite
	cat        *Catalog
	events     *sink
	clock      time.Time
}

type sink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (s *sink) Stamp(e audit.Event) audit.Event { return e }

// Committed keeps the events the store committed.
func (s *sink) Committed(events []audit.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, events...)
}

func (s *sink) take() []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{root: filepath.Join(dir, "root"), data: filepath.Join(dir, "data"), events: &sink{}, clock: time.Unix(1_800_000_000, 0)}
	if err := os.MkdirAll(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenSQLite(filepath.Join(f.data, "bootforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	f.cat = New(f.root, f.data, db)
	f.cat.Events = f.events
	f.cat.Who = "tester"
	// Every write happens a second after the one before, so that "most
	// recently retired" is well defined.
	f.cat.Now = func() time.Time { f.clock = f.clock.Add(time.Second); return f.clock }
	return f
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// build writes a version's files and its manifest by hand, as `image
// build` would leave them.
func (f *fixture) build(t testing.TB, ref string, files map[string]string, sources ...string) image.ID {
	t.Helper()
	id, err := image.ParseID(ref)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.root, filepath.FromSlash(id.Dir()))
	m := image.Manifest{Name: id.Name, Version: id.Version.String(), Template: image.TemplateLinux,
		Built: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Boot: image.Boot{Kind: "linux", Kernel: "vmlinuz"}}
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, image.File{Path: p, Size: int64(len(content)), SHA256: sum([]byte(content))})
	}
	for _, s := range sources {
		m.Sources = append(m.Sources, image.Source{Origin: "blob", Size: 1, SHA256: s})
	}
	f.writeManifest(t, id, m)
	return id
}

func (f *fixture) writeManifest(t testing.TB, id image.ID, m image.Manifest) {
	t.Helper()
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.root, filepath.FromSlash(id.Dir()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, image.ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// states returns NAME@VERSION → state.
func (f *fixture) states(t testing.TB) map[string]image.State {
	t.Helper()
	vs, err := f.cat.Versions()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]image.State{}
	for _, v := range vs {
		out[v.ID.String()] = v.State
	}
	return out
}

func (f *fixture) wantStates(t testing.TB, want map[string]image.State) {
	t.Helper()
	got := f.states(t)
	if len(got) != len(want) {
		t.Errorf("versions %v, want %v", got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s is %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

// promoteDebs builds deb@1.0.0, 2.0.0 and 3.0.0 and promotes each in turn:
// 3.0.0 is active, 2.0.0 and then 1.0.0 the most recently retired.
func (f *fixture) promoteDebs(t testing.TB) {
	t.Helper()
	for _, v := range []string{"deb@1.0.0", "deb@2.0.0", "deb@3.0.0"} {
		f.build(t, v, kernel)
		if _, err := f.cat.Promote(mustID(t, v)); err != nil {
			t.Fatal(err)
		}
	}
}

func mustID(t testing.TB, s string) image.ID {
	t.Helper()
	id, err := image.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var kernel = map[string]string{"vmlinuz": "kernel", "initrd.gz": "initrd", "boot/bcd": "bcd"}

func TestVersionsScan(t *testing.T) {
	f := newFixture(t)
	if vs, err := f.cat.Versions(); err != nil || len(vs) != 0 {
		t.Fatalf("no images dir: %v %v", vs, err)
	}
	f.build(t, "deb@1.0.0", kernel)
	f.build(t, "deb@10.0.0", kernel)
	f.build(t, "deb@2.0.0-rc.1", kernel)
	f.build(t, "win@1.0.0", kernel)
	// Not versions: a build in progress, bad names, no manifest, files.
	for _, d := range []string{".build-123/x", "Bad_Name/1.0.0", "deb/v2", "deb/2.0", "deb/.gc-x", "deb/3.0.0", "plain/file-dir"} {
		if err := os.MkdirAll(filepath.Join(f.root, "images", filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(f.root, "images", ".build-123", "x", "manifest.json"), []byte("{broken"), 0o644)
	os.WriteFile(filepath.Join(f.root, "images", "Bad_Name", "1.0.0", "manifest.json"), []byte("{broken"), 0o644)
	os.WriteFile(filepath.Join(f.root, "images", "README"), []byte("x"), 0o644)

	vs, err := f.cat.Versions()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.ID.String()+" "+string(v.State))
		if !v.Built.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("%s built %v", v.ID, v.Built)
		}
	}
	want := "deb@1.0.0 staged,deb@2.0.0-rc.1 staged,deb@10.0.0 staged,win@1.0.0 staged"
	if strings.Join(got, ",") != want {
		t.Errorf("versions %s, want %s", strings.Join(got, ","), want)
	}
	m, err := f.cat.Manifest(mustID(t, "deb@1.0.0"))
	if err != nil || len(m.Files) != 3 || Size(m) != int64(len("kernel")+len("initrd")+len("bcd")) {
		t.Errorf("manifest %+v %v", m, err)
	}
	if _, err := f.cat.Manifest(mustID(t, "deb@9.9.9")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("manifest of an unbuilt version: %v", err)
	}
}

func TestBrokenManifest(t *testing.T) {
	for name, tt := range map[string]struct {
		mutate func(*image.Manifest)
		raw    string
		want   string
	}{
		"not json":          {raw: "{not json", want: "not a manifest"},
		"other version":     {mutate: func(m *image.Manifest) { m.Version = "2.0.0-rc.1" }, want: "describes deb@2.0.0-rc.1"},
		"path escapes":      {mutate: func(m *image.Manifest) { m.Files[0].Path = "../../etc/shadow" }, want: "not a clean relative path"},
		"absolute path":     {mutate: func(m *image.Manifest) { m.Files[0].Path = "/vmlinuz" }, want: "not a clean relative path"},
		"listed twice":      {mutate: func(m *image.Manifest) { m.Files = append(m.Files, m.Files[0]) }, want: "listed twice"},
		"bad digest":        {mutate: func(m *image.Manifest) { m.Files[0].SHA256 = "XYZ" }, want: "not 64 lower-case hex"},
		"lists itself":      {mutate: func(m *image.Manifest) { m.Files[0].Path = "manifest.json" }, want: "cannot list itself"},
		"negative size":     {mutate: func(m *image.Manifest) { m.Files[0].Size = -1 }, want: "negative size"},
		"upper-case hex":    {mutate: func(m *image.Manifest) { m.Files[0].SHA256 = strings.ToUpper(m.Files[0].SHA256) }, want: "not 64 lower-case hex"},
		"dot in path":       {mutate: func(m *image.Manifest) { m.Files[0].Path = "./vmlinuz" }, want: "not a clean relative path"},
		"backslash in path": {mutate: func(m *image.Manifest) { m.Files[0].Path = `boot\bcd` }, want: "not a clean relative path"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			id := f.build(t, "deb@1.0.0", map[string]string{"vmlinuz": "k"})
			p := filepath.Join(f.root, "images", "deb", "1.0.0", "manifest.json")
			if tt.raw != "" {
				os.WriteFile(p, []byte(tt.raw), 0o644)
			} else {
				m, err := f.cat.Manifest(id)
				if err != nil {
					t.Fatal(err)
				}
				c := *m
				c.Files = append([]image.File(nil), m.Files...)
				tt.mutate(&c)
				f.writeManifest(t, id, c)
				// The cache notices the new manifest by its size.
			}
			// Broken, but not in the way of the others.
			good := f.build(t, "deb@0.9.0", map[string]string{"vmlinuz": "k"})
			vs, err := f.cat.Versions()
			if err != nil || len(vs) != 1 || vs[0].ID.String() != good.String() {
				t.Errorf("Versions: %v, %v; want only %s", vs, err, good)
			}
			broken, err := f.cat.Broken()
			if err != nil || len(broken) != 1 || broken[0].ID.String() != id.String() {
				t.Fatalf("Broken: %v, %v; want %s", broken, err, id)
			}
			if msg := broken[0].Err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, tt.want) {
				t.Errorf("Broken: %q; want an error naming %s and %q", msg, p, tt.want)
			}
			if _, err := f.cat.Find(id.String()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Find %s: %v; want the manifest's error", id, err)
			}
			if _, err := f.cat.Promote(id); err == nil {
				t.Errorf("a broken version was promoted")
			}
		})
	}
}

func TestPromoteAndRollback(t *testing.T) {
	f := newFixture(t)
	for _, v := range []string{"deb@1.0.0", "deb@2.0.0", "deb@3.0.0", "win@1.0.0"} {
		f.build(t, v, kernel)
	}
	g0, _ := f.db.Generation()

	if _, err := f.cat.Rollback("deb"); err == nil || !strings.Contains(err.Error(), "no active version") {
		t.Errorf("rollback without an active version: %v", err)
	}
	if _, err := f.cat.Promote(mustID(t, "deb@9.0.0")); err == nil || !strings.Contains(err.Error(), "not built") {
		t.Errorf("promote of an unbuilt version: %v", err)
	}
	mv, err := f.cat.Promote(mustID(t, "deb@1.0.0"))
	if err != nil || !mv.Changed || mv.From != nil || mv.To.String() != "deb@1.0.0" {
		t.Fatalf("first promote: %+v %v", mv, err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Active, "deb@2.0.0": image.Staged, "deb@3.0.0": image.Staged, "win@1.0.0": image.Staged})
	if g, _ := f.db.Generation(); g <= g0 {
		t.Errorf("promote did not bump the inventory generation (%d → %d)", g0, g)
	}
	ev := f.events.take()
	if len(ev) != 1 || ev[0].Stage != "image" || ev[0].Image != "deb@1.0.0" || ev[0].Protocol != "cli" || ev[0].Result != "promoted by tester" {
		t.Errorf("events of the first promote: %+v", ev)
	}
	if _, err := f.cat.Rollback("deb"); err == nil || !strings.Contains(err.Error(), "no retired version") {
		t.Errorf("rollback without a retired version: %v", err)
	}

	mv, err = f.cat.Promote(mustID(t, "deb@2.0.0"))
	if err != nil || mv.From == nil || mv.From.String() != "deb@1.0.0" || mv.FromState != image.Retired {
		t.Fatalf("second promote: %+v %v", mv, err)
	}
	ev = f.events.take()
	if len(ev) != 2 || ev[0].Image != "deb@1.0.0" || !strings.HasPrefix(ev[0].Result, "retired") || ev[1].Image != "deb@2.0.0" ||
		!strings.Contains(ev[1].Reason, "in place of deb@1.0.0") {
		t.Errorf("events of the second promote: %+v", ev)
	}
	// Promoting the active version again changes nothing.
	g1, _ := f.db.Generation()
	if mv, err := f.cat.Promote(mustID(t, "deb@2.0.0")); err != nil || mv.Changed {
		t.Errorf("promoting the active version: %+v %v", mv, err)
	}
	if g, _ := f.db.Generation(); g != g1 || len(f.events.take()) != 0 {
		t.Error("a promote that changed nothing was written")
	}
	f.cat.Promote(mustID(t, "deb@3.0.0"))
	f.cat.Promote(mustID(t, "win@1.0.0"))
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Retired, "deb@2.0.0": image.Retired, "deb@3.0.0": image.Active, "win@1.0.0": image.Active})
	f.events.take()

	// Rollback steps back through history: 3 → 2 (3 staged), then 2 → 1.
	mv, err = f.cat.Rollback("deb")
	if err != nil || mv.To.String() != "deb@2.0.0" || mv.From.String() != "deb@3.0.0" || mv.FromState != image.Staged {
		t.Fatalf("rollback: %+v %v", mv, err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Retired, "deb@2.0.0": image.Active, "deb@3.0.0": image.Staged, "win@1.0.0": image.Active})
	ev = f.events.take()
	if len(ev) != 2 || ev[0].Image != "deb@3.0.0" || ev[1].Image != "deb@2.0.0" || !strings.Contains(ev[1].Reason, "rollback of deb from 3.0.0 to 2.0.0") {
		t.Errorf("rollback events: %+v", ev)
	}
	if mv, err := f.cat.Rollback("deb"); err != nil || mv.To.String() != "deb@1.0.0" {
		t.Fatalf("second rollback: %+v %v", mv, err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Active, "deb@2.0.0": image.Staged, "deb@3.0.0": image.Staged, "win@1.0.0": image.Active})

	// A retired version can be promoted again, past the rollback order.
	f.cat.Promote(mustID(t, "deb@3.0.0"))
	f.cat.Promote(mustID(t, "deb@2.0.0"))
	f.cat.Promote(mustID(t, "deb@1.0.0"))
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Active, "deb@2.0.0": image.Retired, "deb@3.0.0": image.Retired, "win@1.0.0": image.Active})
	if mv, err := f.cat.Rollback("deb"); err != nil || mv.To.String() != "deb@2.0.0" {
		t.Errorf("rollback goes to the most recently retired, deb@2.0.0: %+v %v", mv, err)
	}

	// The active version removed by hand: promote forgets it, and only
	// one version is ever active.
	os.RemoveAll(filepath.Join(f.root, "images", "deb", "2.0.0"))
	if _, err := f.cat.Promote(mustID(t, "deb@3.0.0")); err != nil {
		t.Fatal(err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Staged, "deb@3.0.0": image.Active, "win@1.0.0": image.Active})
	rows, _ := f.db.ImageStates()
	for _, r := range rows {
		if r.Version == "2.0.0" {
			t.Errorf("the removed version's state was kept: %+v", r)
		}
	}
}

func TestFind(t *testing.T) {
	f := newFixture(t)
	f.build(t, "deb@1.0.0", kernel)
	f.build(t, "deb@2.0.0", kernel)
	if v, err := f.cat.Find("deb"); err != nil || v.ID.String() != "deb@2.0.0" {
		t.Errorf("no active version: the newest, got %v %v", v.ID, err)
	}
	f.cat.Promote(mustID(t, "deb@1.0.0"))
	if v, err := f.cat.Find("deb"); err != nil || v.ID.String() != "deb@1.0.0" || v.State != image.Active {
		t.Errorf("the active version, got %v %v", v, err)
	}
	if v, err := f.cat.Find("deb@2.0.0"); err != nil || v.ID.String() != "deb@2.0.0" || v.State != image.Staged {
		t.Errorf("by version: %v %v", v, err)
	}
	for _, bad := range []string{"deb@3.0.0", "other", "Deb", "deb@^1"} {
		if _, err := f.cat.Find(bad); err == nil {
			t.Errorf("%s found", bad)
		}
	}
}

func TestGC(t *testing.T) {
	f := newFixture(t)
	blob := func(b string) string { return sum([]byte(b)) }
	for i, v := range []string{"deb@1.0.0", "deb@2.0.0", "deb@3.0.0", "deb@4.0.0"} {
		f.build(t, v, kernel, blob("source-"+v))
		if i == 0 {
			f.build(t, "deb@5.0.0", kernel, blob("source-staged")) // staged: never removed
		}
		if _, err := f.cat.Promote(mustID(t, v)); err != nil {
			t.Fatal(err)
		}
	}
	f.build(t, "win@1.0.0", kernel, blob("shared"))
	f.build(t, "win@2.0.0", kernel, blob("shared"))
	f.cat.Promote(mustID(t, "win@1.0.0"))
	f.cat.Promote(mustID(t, "win@2.0.0")) // win@1.0.0 retired, but within keep
	// A retired version removed by hand: its state is forgotten.
	f.build(t, "gone@1.0.0", kernel)
	f.build(t, "gone@2.0.0", kernel)
	f.cat.Promote(mustID(t, "gone@1.0.0"))
	f.cat.Promote(mustID(t, "gone@2.0.0"))
	os.RemoveAll(filepath.Join(f.root, "images", "gone", "1.0.0"))

	blobs := filepath.Join(f.data, "blobs", "sha256")
	os.MkdirAll(blobs, 0o755)
	for _, b := range []string{"source-deb@1.0.0", "source-deb@2.0.0", "source-deb@3.0.0", "source-deb@4.0.0", "source-staged", "shared", "unused"} {
		os.WriteFile(filepath.Join(blobs, blob(b)), []byte(b), 0o644)
	}
	os.WriteFile(filepath.Join(blobs, ".import-123"), []byte("partial"), 0o644) // not a blob
	os.WriteFile(filepath.Join(blobs, "tmp"), []byte("partial"), 0o644)
	f.events.take()

	want := func(res GCResult) {
		t.Helper()
		var vs []string
		for _, id := range res.Versions {
			vs = append(vs, id.String())
		}
		if strings.Join(vs, ",") != "deb@1.0.0,deb@2.0.0" {
			t.Errorf("versions removed: %v", vs)
		}
		wantBlobs := map[string]bool{blob("source-deb@1.0.0"): true, blob("source-deb@2.0.0"): true, blob("unused"): true}
		if len(res.Blobs) != len(wantBlobs) {
			t.Errorf("blobs removed: %v", res.Blobs)
		}
		for _, b := range res.Blobs {
			if !wantBlobs[b] {
				t.Errorf("blob %s removed", b)
			}
		}
		if strings.Join(res.Forgotten, ",") != "gone@1.0.0" {
			t.Errorf("forgotten: %v", res.Forgotten)
		}
		wantBytes := 2*int64(len("kernel")+len("initrd")+len("bcd")) + int64(len("source-deb@1.0.0")+len("source-deb@2.0.0")+len("unused"))
		if res.Bytes != wantBytes {
			t.Errorf("bytes %d, want %d", res.Bytes, wantBytes)
		}
	}
	if _, err := f.cat.GC(GCOptions{Keep: -1}); err == nil {
		t.Error("keep -1 accepted")
	}
	g0, _ := f.db.Generation()
	res, err := f.cat.GC(GCOptions{Keep: 1, DryRun: true})
	if err != nil || !res.DryRun {
		t.Fatal(res, err)
	}
	want(res)
	if g, _ := f.db.Generation(); g != g0 || len(f.events.take()) != 0 {
		t.Error("a dry run wrote")
	}
	for _, p := range []string{"images/deb/1.0.0/vmlinuz", "images/deb/2.0.0/manifest.json"} {
		if _, err := os.Stat(filepath.Join(f.root, p)); err != nil {
			t.Errorf("dry run removed %s", p)
		}
	}

	res, err = f.cat.GC(GCOptions{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	want(res)
	f.wantStates(t, map[string]image.State{
		"deb@3.0.0": image.Retired, "deb@4.0.0": image.Active, "deb@5.0.0": image.Staged,
		"win@1.0.0": image.Retired, "win@2.0.0": image.Active, "gone@2.0.0": image.Active,
	})
	for _, p := range []string{"images/deb/1.0.0", "images/deb/2.0.0"} {
		if _, err := os.Stat(filepath.Join(f.root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(f.root, "images"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".gc-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	left, _ := os.ReadDir(blobs)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) != 6 { // deb@3, deb@4, staged, shared, and the two non-blobs
		t.Errorf("blobs left: %v", names)
	}
	if g, _ := f.db.Generation(); g <= g0 {
		t.Error("gc did not bump the inventory generation")
	}
	// Every change has its event: the versions and blobs removed, and
	// the state forgotten of the version removed by hand (before, it was
	// forgotten without a line).
	ev := f.events.take()
	var removed []string
	for _, e := range ev {
		if e.Stage == "image" && e.Image == "gone@1.0.0" && e.File == "images/gone/1.0.0" && e.Result == "forgotten by tester" {
			continue
		}
		if e.Stage != "image" || !strings.HasPrefix(e.Result, "removed") {
			t.Errorf("event %+v", e)
		}
		removed = append(removed, e.Image+e.File)
	}
	if len(ev) != 6 || len(removed) != 5 || !strings.Contains(strings.Join(removed, " "), "deb@1.0.0images/deb/1.0.0") {
		t.Errorf("gc events: %v, want gone@1.0.0 forgotten and 5 removals", ev)
	}
	// Nothing more to do, and keep 0 removes every retired version.
	if res, err := f.cat.GC(GCOptions{Keep: 1}); err != nil || len(res.Versions)+len(res.Blobs)+len(res.Forgotten) != 0 {
		t.Errorf("second gc: %+v %v", res, err)
	}
	if res, err := f.cat.GC(GCOptions{Keep: 0}); err != nil || len(res.Versions) != 2 {
		t.Errorf("keep 0: %+v %v", res, err)
	}
	// Rollback now has nothing to go back to.
	if _, err := f.cat.Rollback("deb"); err == nil {
		t.Error("rollback after gc --keep 0")
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	big := strings.Repeat("x", 3<<20) // more than one read buffer
	a := f.build(t, "deb@1.0.0", map[string]string{"vmlinuz": big, "initrd.gz": "initrd", "boot/bcd": "bcd", "same-size": "abc"})
	b := f.build(t, "win@1.0.0", map[string]string{"boot.wim": "wim"})
	var last [2]int64
	calls := 0
	progress := func(done, total int64) { last = [2]int64{done, total}; calls++ }
	drifts, err := f.cat.Verify(progress, a, b)
	if err != nil || len(drifts) != 0 {
		t.Fatalf("clean: %v %v", drifts, err)
	}
	total := int64(len(big) + len("initrd") + len("bcd") + len("abc") + len("wim"))
	if last != [2]int64{total, total} || calls != 6 {
		t.Errorf("progress ended at %v after %d calls, want %d of %d after 6", last, calls, total, total)
	}

	dir := filepath.Join(f.root, "images", "deb", "1.0.0")
	os.WriteFile(filepath.Join(dir, "same-size"), []byte("abd"), 0o644)   // one byte flipped
	os.WriteFile(filepath.Join(dir, "initrd.gz"), []byte("init"), 0o644)  // truncated
	os.Remove(filepath.Join(dir, "boot", "bcd"))                          // missing
	os.WriteFile(filepath.Join(dir, "boot", "extra"), []byte("e"), 0o644) // not listed
	os.Symlink("/etc/passwd", filepath.Join(f.root, "images", "win", "1.0.0", "boot.wim.tmp"))
	os.Remove(filepath.Join(f.root, "images", "win", "1.0.0", "boot.wim"))
	os.Symlink("/etc/hostname", filepath.Join(f.root, "images", "win", "1.0.0", "boot.wim")) // leads out of the root

	drifts, err = f.cat.Verify(nil, a, b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range drifts {
		got = append(got, d.ID.String()+" "+d.Path+" "+string(d.Kind))
	}
	want := []string{
		"deb@1.0.0 boot/bcd missing",
		"deb@1.0.0 boot/extra not in the manifest",
		"deb@1.0.0 initrd.gz size differs",
		"deb@1.0.0 same-size digest differs",
		"win@1.0.0 boot.wim unreadable",
		"win@1.0.0 boot.wim.tmp not in the manifest",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("drifts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range drifts {
		s := d.String()
		switch d.Kind {
		case SizeDiffers:
			if d.WantSize != 6 || d.GotSize != 4 || !strings.Contains(s, "manifest 6 bytes, file 4 bytes") {
				t.Errorf("size drift: %+v %s", d, s)
			}
		case DigestDiffers:
			if d.WantSHA256 != sum([]byte("abc")) || d.GotSHA256 != sum([]byte("abd")) || !strings.Contains(s, d.GotSHA256) {
				t.Errorf("digest drift: %+v", d)
			}
		}
	}
	if _, err := f.cat.Verify(nil, mustID(t, "deb@7.0.0")); err == nil {
		t.Error("verifying an unbuilt version passed")
	}
}

// racingStore runs another writer's change just before the first write
// it is given, between that writer's read and its write.
type racingStore struct {
	Store
	first func()
}

func (r *racingStore) SetImageStates(was, changes []store.ImageState, events ...audit.Event) error {
	if f := r.first; f != nil {
		r.first = nil
		f()
	}
	return r.Store.SetImageStates(was, changes, events...)
}

// Of two rollbacks (or promotes) of one name at once, one steps back and
// the other is refused; before, both reported the same single step.
func TestConcurrentStateChangesRefused(t *testing.T) {
	f := newFixture(t)
	f.promoteDebs(t)
	other := New(f.root, f.data, f.db)
	racing := &racingStore{Store: f.db, first: func() {
		if _, err := other.Rollback("deb"); err != nil {
			t.Errorf("the other rollback: %v", err)
		}
	}}
	c := New(f.root, f.data, racing)
	if _, err := c.Rollback("deb"); !errors.Is(err, store.ErrImageRace) {
		t.Errorf("the second rollback: %v, want ErrImageRace", err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Retired, "deb@2.0.0": image.Active, "deb@3.0.0": image.Staged})

	racing.first = func() {
		if _, err := other.Promote(mustID(t, "deb@3.0.0")); err != nil {
			t.Errorf("the other promote: %v", err)
		}
	}
	if _, err := c.Promote(mustID(t, "deb@1.0.0")); !errors.Is(err, store.ErrImageRace) {
		t.Errorf("a promote racing another: %v, want ErrImageRace", err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Retired, "deb@2.0.0": image.Retired, "deb@3.0.0": image.Active})
}

// gc keeps a retired version that a menu entry resolves to, removes no
// blob while a version's manifest cannot be read (nor that version, nor
// its state), and removes the work directories of an import and a build
// that were killed.
func TestGCKeepsInUseBrokenAndSweeps(t *testing.T) {
	f := newFixture(t)
	for _, v := range []string{"deb@1.0.0", "deb@2.0.0", "deb@3.0.0", "deb@4.0.0"} {
		f.build(t, v, kernel)
		if _, err := f.cat.Promote(mustID(t, v)); err != nil {
			t.Fatal(err)
		}
	}
	images := filepath.Join(f.root, "images")
	killed := filepath.Join(images, image.BuildWorkPrefix+"deb-123")
	os.MkdirAll(filepath.Join(killed, "version"), 0o755)
	killedImport := filepath.Join(f.data, "blobs", "tmp", blob.ImportWorkPrefix+"456")
	os.MkdirAll(killedImport, 0o700)
	os.WriteFile(filepath.Join(killedImport, "blob"), []byte("partial"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(killed, old, old)
	os.Chtimes(killedImport, old, old)

	res, err := f.cat.GC(GCOptions{Keep: 1, InUse: []image.ID{mustID(t, "deb@1.0.0")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Versions) != 1 || res.Versions[0].String() != "deb@2.0.0" || len(res.InUse) != 1 || res.InUse[0].String() != "deb@1.0.0" {
		t.Errorf("removed %v, kept in use %v; want deb@2.0.0 removed, deb@1.0.0 kept", res.Versions, res.InUse)
	}
	if len(res.Stale) != 2 || res.Stale[0] != killedImport || res.Stale[1] != killed {
		t.Errorf("stale %v, want %s and %s", res.Stale, killedImport, killed)
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Errorf("the killed build's directory: %v", err)
	}
	if _, err := os.Stat(killedImport); !os.IsNotExist(err) {
		t.Errorf("the killed import's directory: %v", err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Retired, "deb@3.0.0": image.Retired, "deb@4.0.0": image.Active})

	// A broken manifest: no blob goes, and the broken version keeps its
	// directory and its state.
	blobs := filepath.Join(f.data, "blobs", "sha256")
	os.MkdirAll(blobs, 0o755)
	unused := sum([]byte("unused"))
	os.WriteFile(filepath.Join(blobs, unused), []byte("unused"), 0o644)
	os.WriteFile(filepath.Join(images, "deb", "3.0.0", "manifest.json"), []byte("{"), 0o644)
	res, err = f.cat.GC(GCOptions{Keep: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Broken) != 1 || len(res.Blobs) != 0 || len(res.Forgotten) != 0 {
		t.Errorf("broken %v, blobs %v, forgotten %v; want one broken, no blob, nothing forgotten", res.Broken, res.Blobs, res.Forgotten)
	}
	if _, err := os.Stat(filepath.Join(blobs, unused)); err != nil {
		t.Errorf("a blob was removed while a manifest is broken: %v", err)
	}
	if _, err := os.Stat(filepath.Join(images, "deb", "3.0.0")); err != nil {
		t.Errorf("the broken version: %v", err)
	}
	rows, _ := f.db.ImageStates()
	if len(rows) != 2 || rows[0].Version != "3.0.0" || rows[0].State != image.Retired || rows[1].Version != "4.0.0" {
		t.Errorf("stored states %+v; want deb@3.0.0 retired, deb@4.0.0 active", rows)
	}
}

// A promote whose boot-log events the store refuses is not made: the
// version active before stays active, and nobody hears of events that
// are not in the log. Before, the states changed and the events were
// lost.
func TestPromoteNotMadeWithoutItsEvents(t *testing.T) {
	f := newFixture(t)
	for _, v := range []string{"deb@1.0.0", "deb@2.0.0"} {
		f.build(t, v, kernel)
	}
	if _, err := f.cat.Promote(mustID(t, "deb@1.0.0")); err != nil {
		t.Fatal(err)
	}
	shown := f.events.take()
	stored, err := f.db.Events(store.EventFilter{Stage: "image"})
	if err != nil || len(stored) != 1 || len(shown) != 1 || stored[0].Result != "promoted by tester" || shown[0].Result != stored[0].Result {
		t.Fatalf("the promote's event: stored %+v (%v), shown %+v", stored, err, shown)
	}
	storetest.RefuseEvents(t, filepath.Join(f.data, "bootforge.db"), false)
	if _, err := f.cat.Promote(mustID(t, "deb@2.0.0")); err == nil || !strings.Contains(err.Error(), "events refused") {
		t.Errorf("promote with its events refused: %v", err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Active, "deb@2.0.0": image.Staged})
	if ev := f.events.take(); len(ev) != 0 {
		t.Errorf("events of refused changes were shown: %+v", ev)
	}
}

// A gc whose boot-log events the store refuses removes no version: the
// versions it took out of sight are put back, their states kept. Before,
// they were deleted with no line in the log.
func TestGCRemovesNoVersionWithoutItsEvents(t *testing.T) {
	f := newFixture(t)
	f.promoteDebs(t)
	f.events.take()
	storetest.RefuseEvents(t, filepath.Join(f.data, "bootforge.db"), false)
	if _, err := f.cat.GC(GCOptions{Keep: 0}); err == nil || !strings.Contains(err.Error(), "events refused") {
		t.Errorf("gc with its events refused: %v", err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Retired, "deb@2.0.0": image.Retired, "deb@3.0.0": image.Active})
	if drifts, err := f.cat.Verify(nil, mustID(t, "deb@1.0.0"), mustID(t, "deb@2.0.0")); err != nil || len(drifts) != 0 {
		t.Errorf("the versions after the refused gc: %v %v", err, drifts)
	}
	if ev := f.events.take(); len(ev) != 0 {
		t.Errorf("events of a refused gc were shown: %+v", ev)
	}
	entries, _ := os.ReadDir(filepath.Join(f.root, "images"))
	for _, e := range entries {
		if e.Name() != "deb" {
			t.Errorf("left in images/: %s", e.Name())
		}
	}
}

// statesHook runs before its first ImageStates: gc reads the states after
// it has scanned the versions on disk.
type statesHook struct {
	Store
	first func()
}

func (s *statesHook) ImageStates() ([]store.ImageState, error) {
	if f := s.first; f != nil {
		s.first = nil
		f()
	}
	return s.Store.ImageStates()
}

// A name's directory swapped for a symbolic link between gc's scan and
// its removal is not followed: before, gc renamed images/NAME/VERSION by
// path, moved the directory the link led to (here outside the root) into
// its work directory and deleted it.
func TestGCFollowsNoLinkSwappedIn(t *testing.T) {
	f := newFixture(t)
	for _, v := range []string{"deb@1.0.0", "deb@2.0.0"} {
		f.build(t, v, map[string]string{"vmlinuz": "kernel " + v})
		if _, err := f.cat.Promote(mustID(t, v)); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "1.0.0")
	precious := filepath.Join(outside, "precious")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(precious, []byte("not gc's"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(f.root, "images", "deb")
	c := New(f.root, f.data, &statesHook{Store: f.db, first: func() {
		if err := os.Rename(name, name+"-moved"); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(filepath.Dir(outside), name); err != nil {
			t.Error(err)
		}
	}})
	res, err := c.GC(GCOptions{Keep: 0})
	if _, serr := os.Stat(precious); serr != nil {
		t.Fatalf("gc removed a directory outside the root through a link swapped in: %v (gc: %+v, %v)", serr, res, err)
	}
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("gc: %v, want a refusal naming the symbolic link", err)
	}
	t.Log(err)
	// With the name's directory back, both versions are there as they were.
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(name+"-moved", name); err != nil {
		t.Fatal(err)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Retired, "deb@2.0.0": image.Active})
}
