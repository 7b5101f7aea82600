package inventory

import (
	"errors"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/config"
)

// memStore is a WriteStore in memory.
type memStore struct {
	mu    sync.Mutex
	hosts map[string]boot.Host
	shots map[string]*boot.NextBoot
	log   []audit.Event // the events written with the writes
}

func newMemStore() *memStore {
	return &memStore{hosts: map[string]boot.Host{}, shots: map[string]*boot.NextBoot{}}
}

func (m *memStore) Hosts() ([]boot.Host, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []boot.Host
	for _, h := range m.hosts {
		h.Source = "store"
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *memStore) PutHost(h boot.Host, events ...audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hosts[h.Name] = h
	m.log = append(m.log, events...)
	return nil
}

func (m *memStore) DeleteHost(name string, events ...audit.Event) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.hosts[name]
	delete(m.hosts, name)
	if ok {
		m.log = append(m.log, events...)
	}
	return ok, nil
}

func (m *memStore) NextBoots() (map[string]*boot.NextBoot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]*boot.NextBoot{}
	for k, v := range m.shots {
		nb := *v
		out[k] = &nb
	}
	return out, nil
}

func (m *memStore) PutNextBoot(mac net.HardwareAddr, nb boot.NextBoot, events ...audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shots[strings.ToLower(mac.String())] = &nb
	m.log = append(m.log, events...)
	return nil
}

func (m *memStore) DeleteNextBoot(mac net.HardwareAddr, events ...audit.Event) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := strings.ToLower(mac.String())
	_, ok := m.shots[k]
	delete(m.shots, k)
	if ok {
		m.log = append(m.log, events...)
	}
	return ok, nil
}

// events are those the Service was told were committed.
type events []audit.Event

func (e *events) Stamp(ev audit.Event) audit.Event { return ev }

func (e *events) Committed(evs []audit.Event) { *e = append(*e, evs...) }

// testInventory: profile "lab" for OUI 52:54:00 with "install" in its main
// menu and "winpe" only in its efi-x64 variant; "other" for OUI 00:16:3e;
// a file host pc0; no default profile.
func testService(t *testing.T) (*Service, *memStore, *events) {
	t.Helper()
	entries := func(names ...string) []boot.Entry {
		var out []boot.Entry
		for _, n := range names {
			out = append(out, boot.Entry{Name: n, Kind: boot.KindLocal})
		}
		return out
	}
	profiles := []boot.Profile{
		{Name: "lab", Match: []boot.Selector{{OUI: []byte{0x52, 0x54, 0x00}}}, Source: "profiles/lab.yaml:1",
			Menu:     boot.Menu{Entries: entries("install", "disk")},
			Variants: map[boot.Firmware]boot.Menu{boot.FirmwareEFIx64: {Entries: entries("install", "winpe")}}},
		{Name: "other", Match: []boot.Selector{{OUI: []byte{0x00, 0x16, 0x3e}}}, Source: "profiles/other.yaml:1",
			Menu: boot.Menu{Entries: entries("rescue")}},
	}
	mac0, _ := net.ParseMAC("52:54:00:00:00:10")
	files := []boot.Host{{Name: "pc0", MACs: []net.HardwareAddr{mac0}, Source: "hosts/site.yaml:1"}}
	st := newMemStore()
	inv := func() *boot.Inventory {
		stored, _ := st.Hosts()
		inv, err := boot.NewInventory(profiles, append(append([]boot.Host(nil), files...), stored...), "")
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	ev := &events{}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return &Service{Store: st, Inventory: inv, Events: ev, Now: func() time.Time { return now }}, st, ev
}

var cli = Actor{Protocol: "cli", Who: "alice"}

func wantError(t *testing.T, err error, kind ErrorKind, field string, words ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want an *Error", err, err)
	}
	if e.Kind != kind || e.Field != field {
		t.Errorf("error %q: kind %d field %q, want kind %d field %q", e, e.Kind, e.Field, kind, field)
	}
	for _, w := range words {
		if !strings.Contains(e.Msg, w) {
			t.Errorf("error %q lacks %q", e.Msg, w)
		}
	}
}

func TestPutHost(t *testing.T) {
	s, st, ev := testService(t)
	v, err := s.PutHost(cli, config.Host{Name: "pc1", MACs: []string{"52:54:00:AA:00:01"}, Labels: []string{"kiosk"}, SecureBoot: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "pc1" || v.MACs[0] != "52:54:00:aa:00:01" || !v.SecureBoot || v.Source != "store" || v.Profile != "" || v.ChosenProfile != "lab" || v.Why == "" {
		t.Fatalf("view %+v", v)
	}
	if h := st.hosts["pc1"]; !h.SecureBoot || h.Labels[0] != "kiosk" {
		t.Fatalf("stored %+v", h)
	}
	if len(*ev) != 1 || (*ev)[0].Protocol != "cli" || (*ev)[0].Result != "host stored by alice" || (*ev)[0].MAC != "52:54:00:aa:00:01" || (*ev)[0].File != "pc1" {
		t.Fatalf("events %+v", *ev)
	}
	if len(st.log) != 1 || st.log[0] != (*ev)[0] {
		t.Fatalf("the store wrote %+v with the host, want the event shown", st.log)
	}
	// Replacing it with its own MACs is fine; pinning a profile shows in both.
	v, err = s.PutHost(cli, config.Host{Name: "pc1", MACs: []string{"52:54:00:aa:00:01"}, Profile: "other"})
	if err != nil || v.Profile != "other" || v.ChosenProfile != "other" || v.SecureBoot {
		t.Fatalf("replace: %+v %v", v, err)
	}

	tests := []struct {
		name  string
		h     config.Host
		kind  ErrorKind
		field string
		words []string
	}{
		{"no name", config.Host{MACs: []string{"52:54:00:aa:00:09"}}, Invalid, "name", nil},
		{"name with ESC", config.Host{Name: "\x1b[31mRED", MACs: []string{"52:54:00:aa:00:09"}}, Invalid, "name", []string{`"\x1b[31mRED"`, "DNS label"}},
		{"name with NUL", config.Host{Name: "a\x00b", MACs: []string{"52:54:00:aa:00:09"}}, Invalid, "name", []string{"DNS label"}},
		{"name with a slash", config.Host{Name: "a/b", MACs: []string{"52:54:00:aa:00:09"}}, Invalid, "name", []string{"DNS label"}},
		{"name of 64 characters", config.Host{Name: strings.Repeat("a", 64), MACs: []string{"52:54:00:aa:00:09"}}, Invalid, "name", []string{"at most 63"}},
		{"no mac or uuid", config.Host{Name: "x"}, Invalid, "macs", nil},
		{"bad mac", config.Host{Name: "x", MACs: []string{"52:54:00:aa:00:09", "zz"}}, Invalid, "macs[1]", []string{`"zz"`}},
		{"mac twice", config.Host{Name: "x", MACs: []string{"52:54:00:aa:00:09", "52-54-00-AA-00-09"}}, Invalid, "macs[1]", []string{"twice"}},
		{"label with a space", config.Host{Name: "x", MACs: []string{"52:54:00:aa:00:09"}, Labels: []string{"ok", "a b"}}, Invalid, "labels[1]", nil},
		{"label with NUL", config.Host{Name: "x", MACs: []string{"52:54:00:aa:00:09"}, Labels: []string{"a\x00b"}}, Invalid, "labels[0]", []string{"printable"}},
		{"label with ESC", config.Host{Name: "x", MACs: []string{"52:54:00:aa:00:09"}, Labels: []string{"\x1b[31m"}}, Invalid, "labels[0]", []string{"printable"}},
		{"empty label", config.Host{Name: "x", MACs: []string{"52:54:00:aa:00:09"}, Labels: []string{""}}, Invalid, "labels[0]", nil},
		{"not a UUID", config.Host{Name: "x", UUID: "u-1"}, Invalid, "uuid", []string{`"u-1"`}},
		{"ghost profile", config.Host{Name: "x", MACs: []string{"52:54:00:aa:00:09"}, Profile: "ghost"}, Invalid, "profile", []string{`"ghost"`}},
		{"MAC of a stored host", config.Host{Name: "x", MACs: []string{"52:54:00:aa:00:01"}}, Conflict, "macs[0]", []string{`"pc1"`}},
		{"MAC of a file host", config.Host{Name: "x", MACs: []string{"00:16:3e:00:00:01", "52:54:00:00:00:10"}}, Conflict, "macs[1]", []string{`"pc0"`, "hosts/site.yaml:1"}},
		{"name of a file host", config.Host{Name: "pc0", MACs: []string{"52:54:00:00:00:10"}}, Conflict, "name", []string{"hosts/site.yaml:1"}},
		{"name of a file host but for case", config.Host{Name: "PC0", MACs: []string{"52:54:00:aa:00:09"}}, Conflict, "name",
			[]string{`host "PC0": host "pc0" (hosts/site.yaml:1) has the same name`, "ignoring case"}},
		{"name of a stored host but for case", config.Host{Name: "Pc1", MACs: []string{"52:54:00:aa:00:09"}}, Conflict, "name",
			[]string{`host "Pc1": host "pc1" (store) has the same name`, "ignoring case"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.PutHost(cli, tt.h)
			wantError(t, err, tt.kind, tt.field, tt.words...)
		})
	}
	if len(st.hosts) != 1 || len(*ev) != 2 {
		t.Fatalf("refused writes reached the store or the log: %v %v", st.hosts, *ev)
	}

	// A UUID, however it is written, belongs to one host, kept as
	// clients are matched by it.
	v, err = s.PutHost(cli, config.Host{Name: "u1", UUID: "{4C4C4544-0000-1000-8000-000000000001}"})
	if err != nil {
		t.Fatal(err)
	}
	if v.UUID != "4c4c4544-0000-1000-8000-000000000001" {
		t.Errorf("UUID kept as %q", v.UUID)
	}
	_, err = s.PutHost(cli, config.Host{Name: "u2", UUID: "4c4c4544000010008000000000000001"})
	wantError(t, err, Conflict, "uuid", `"u1"`)
}

func TestPutHostSecureBootKernels(t *testing.T) {
	s, _, _ := testService(t)
	s.CheckKernel = func(path string) error { return errors.New("not signed") }
	// lab has no Linux entries: nothing to check.
	if _, err := s.PutHost(cli, config.Host{Name: "a", MACs: []string{"52:54:00:aa:00:01"}, Profile: "lab", SecureBoot: true}); err != nil {
		t.Fatal(err)
	}
	inv := s.Inventory
	s.Inventory = func() *boot.Inventory {
		cur := inv()
		ps := cur.Profiles()
		// ps[0] is lab: equal priorities go by name. A Secure Boot client
		// is x64 UEFI, so it gets lab's efi-x64 variant: the kernel goes there.
		v := ps[0].Variants[boot.FirmwareEFIx64]
		v.Entries = append(append([]boot.Entry(nil), v.Entries...), boot.Entry{Name: "deb", Kind: boot.KindLinux, Kernel: "deb/vmlinuz"})
		ps[0].Variants = map[boot.Firmware]boot.Menu{boot.FirmwareEFIx64: v}
		out, err := boot.NewInventory(ps, cur.Hosts(), cur.Default)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	_, err := s.PutHost(cli, config.Host{Name: "b", MACs: []string{"52:54:00:aa:00:02"}, Profile: "lab", SecureBoot: true})
	wantError(t, err, Invalid, "secure_boot", "deb/vmlinuz", "not signed")
	// Without Secure Boot the same host is fine.
	if _, err := s.PutHost(cli, config.Host{Name: "b", MACs: []string{"52:54:00:aa:00:02"}, Profile: "lab"}); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteHost(t *testing.T) {
	s, st, ev := testService(t)
	if _, err := s.PutHost(cli, config.Host{Name: "pc1", MACs: []string{"52:54:00:aa:00:01"}}); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.DeleteHost(cli, "pc0"), Conflict, "name", "hosts/site.yaml:1")
	wantError(t, s.DeleteHost(cli, "nobody"), NotFound, "name", `"nobody"`)
	// A host name is found ignoring case, as DNS finds it.
	if err := s.DeleteHost(cli, "PC1"); err != nil {
		t.Fatal(err)
	}
	if len(st.hosts) != 0 {
		t.Fatalf("still stored: %v", st.hosts)
	}
	if last := (*ev)[len(*ev)-1]; last.Result != "host removed by alice" || last.MAC != "52:54:00:aa:00:01" || last.File != "pc1" {
		t.Fatalf("event %+v", last)
	}
}

func TestSetNextBoot(t *testing.T) {
	s, st, ev := testService(t)
	// An entry of the main menu of a profile the MAC can get.
	r, err := s.SetNextBoot(cli, "52-54-00-AA-00-01", NextBootRequest{Entry: "install", Expires: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r.MAC != "52:54:00:aa:00:01" || r.State != boot.OneShotPending || r.Note() != "" || !r.Expires.Equal(s.now().Add(2*time.Hour)) {
		t.Fatalf("result %+v", r)
	}
	if nb := st.shots["52:54:00:aa:00:01"]; nb == nil || nb.Entry != "install" || nb.State != boot.OneShotPending {
		t.Fatalf("stored %+v", nb)
	}
	if last := (*ev)[len(*ev)-1]; last.Stage != "one-shot" || last.Result != "set by alice" || last.File != "install" || last.Reason != "" {
		t.Fatalf("event %+v", last)
	}

	// Only in the efi-x64 variant: accepted, and said so.
	r, err = s.SetNextBoot(cli, "52:54:00:aa:00:01", NextBootRequest{Entry: "winpe"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `only in the efi-x64 menu of profile "lab"`; r.Note() != want {
		t.Fatalf("note %q, want %q", r.Note(), want)
	}
	if last := (*ev)[len(*ev)-1]; last.Reason != r.Note() {
		t.Fatalf("event reason %q", last.Reason)
	}

	// In no menu of the one profile it can get.
	_, err = s.SetNextBoot(cli, "52:54:00:aa:00:01", NextBootRequest{Entry: "rescue"})
	wantError(t, err, Invalid, "entry", "52:54:00:aa:00:01", `"lab"`, `"rescue"`)
	// No profile can boot this MAC at all (no rule, no default).
	_, err = s.SetNextBoot(cli, "02:00:00:00:00:01", NextBootRequest{Entry: "install"})
	wantError(t, err, Invalid, "mac", "no profile can boot 02:00:00:00:00:01", `"install"`)

	// A pinned profile is the only one: "install" of lab no longer counts.
	if _, err := s.PutHost(cli, config.Host{Name: "pc2", MACs: []string{"52:54:00:aa:00:02"}, Profile: "other"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.SetNextBoot(cli, "52:54:00:aa:00:02", NextBootRequest{Entry: "install"})
	wantError(t, err, Invalid, "entry", `only profile "other"`)
	if _, err := s.SetNextBoot(cli, "52:54:00:aa:00:02", NextBootRequest{Entry: "rescue", Always: true}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		mac   string
		req   NextBootRequest
		field string
	}{
		{"nope", NextBootRequest{Entry: "install"}, "mac"},
		{"52:54:00:aa:00:01", NextBootRequest{}, "entry"},
		{"52:54:00:aa:00:01", NextBootRequest{Entry: "install", Expires: -time.Second}, "expires"},
		{"52:54:00:aa:00:01", NextBootRequest{Entry: "install", Expires: MaxExpires + time.Second}, "expires"},
	} {
		_, err := s.SetNextBoot(cli, tt.mac, tt.req)
		wantError(t, err, Invalid, tt.field)
	}

	// A host name stands for its one MAC; a host with two must be told
	// which; an unknown name is neither.
	if r, err := s.SetNextBoot(cli, "PC2", NextBootRequest{Entry: "rescue"}); err != nil || r.MAC != "52:54:00:aa:00:02" {
		t.Fatalf("by host name: %+v %v", r, err)
	}
	if _, err := s.PutHost(cli, config.Host{Name: "pc3", MACs: []string{"52:54:00:aa:00:03", "52:54:00:aa:00:04"}}); err != nil {
		t.Fatal(err)
	}
	_, err = s.SetNextBoot(cli, "pc3", NextBootRequest{Entry: "install"})
	wantError(t, err, Invalid, "mac", `host "pc3" has 2 MAC addresses (52:54:00:aa:00:03, 52:54:00:aa:00:04)`)
	_, err = s.SetNextBoot(cli, "pc9", NextBootRequest{Entry: "install"})
	wantError(t, err, Invalid, "mac", `"pc9" is neither a MAC address nor a host name`)

	mac, err := s.ClearNextBoot(cli, "52:54:00:AA:00:01")
	if err != nil || mac != "52:54:00:aa:00:01" || st.shots[mac] != nil {
		t.Fatalf("clear: %q %v %v", mac, err, st.shots)
	}
	if last := (*ev)[len(*ev)-1]; last.Result != "cleared by alice" || last.MAC != mac {
		t.Fatalf("event %+v", last)
	}
}

// One reading of a one-shot's wait for the CLI and the API: a positive
// duration of at most 10 years, or nothing for never. 2500000h used to be
// taken and stored as a date in 1727, expired at once.
func TestParseExpires(t *testing.T) {
	for text, want := range map[string]time.Duration{"": 0, "2h": 2 * time.Hour, "1s": time.Second, "87600h": MaxExpires} {
		if d, err := ParseExpires(text); err != nil || d != want {
			t.Errorf("ParseExpires(%q) = %s, %v; want %s", text, d, err, want)
		}
	}
	for text, msg := range map[string]string{
		"soon":      `expires "soon" is not a duration of at most 87600h (10 years), like 2h`,
		"0s":        "expires 0s is not a positive duration; give how long the one-shot waits, e.g. 2h, or leave it out for one that never expires",
		"-1h":       "expires -1h0m0s is not a positive duration",
		"87600h1s":  "expires 87600h0m1s is more than 87600h (10 years)",
		"2500000h":  "expires 2500000h0m0s is more than 87600h (10 years)",
		"9999999h":  `expires "9999999h" is not a duration of at most 87600h (10 years), like 2h`,
		"-87601h0s": "expires -87601h0m0s is not a positive duration",
	} {
		_, err := ParseExpires(text)
		wantError(t, err, Invalid, "expires", msg)
	}
}

func TestHostViews(t *testing.T) {
	s, st, _ := testService(t)
	if _, err := s.PutHost(cli, config.Host{Name: "pc1", MACs: []string{"00:16:3e:00:00:01", "52:54:00:aa:00:01"}}); err != nil {
		t.Fatal(err)
	}
	// A one-shot on the second MAC, expired without a boot.
	mac, _ := net.ParseMAC("52:54:00:aa:00:01")
	st.PutNextBoot(mac, boot.NextBoot{Entry: "install", State: boot.OneShotPending, Expires: s.now().Add(-time.Minute)})

	all, err := s.Hosts()
	if err != nil || len(all) != 2 || all[0].Name != "pc0" || all[1].Name != "pc1" {
		t.Fatalf("%+v %v", all, err)
	}
	v := all[1]
	if v.ChosenProfile != "other" || v.NextBoot == nil || v.NextBoot.MAC != "52:54:00:aa:00:01" || v.NextBoot.State != "expired" {
		t.Fatalf("pc1 %+v %+v", v, v.NextBoot)
	}
	for _, key := range []string{"pc1", "52-54-00-AA-00-01"} {
		got, err := s.FindHosts(key)
		if err != nil || len(got) != 1 || got[0].Name != "pc1" {
			t.Fatalf("find %s: %+v %v", key, got, err)
		}
	}
	got, err := s.FindHosts("52:54:00:77:77:77")
	if err != nil || len(got) != 1 || got[0].Name != "(not in inventory)" || got[0].ChosenProfile != "lab" {
		t.Fatalf("unknown MAC: %+v %v", got, err)
	}
	_, err = s.FindHosts("nobody")
	wantError(t, err, NotFound, "name")

	shots, err := s.NextBoots()
	if err != nil || len(shots) != 1 || shots[0].State != "expired" || shots[0].Expires == "" {
		t.Fatalf("%+v %v", shots, err)
	}
}
