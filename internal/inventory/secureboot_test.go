package inventory

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// Every kernel a Secure Boot client can be handed is checked: a profile's
// with secure_boot, and those a Secure Boot host (pinned or not) or a
// client on a Secure Boot subnet can get (issue #11, bug 4).
func TestSecureBootKernelsChecked(t *testing.T) {
	const profiles = `- name: lab
  match: [{oui: "52:54:00"}]
  menu:
    entries:
      - {name: install, kind: linux, kernel: unsigned/vmlinuz}
- name: arm
  match: [{arch: efi-arm64}]
  menu:
    entries:
      - {name: arm, kind: linux, kernel: arm/vmlinuz}
- name: other
  match: [{oui: "02:00:00"}]
  menu:
    entries:
      - {name: other, kind: linux, kernel: other/vmlinuz}
`
	check := func(path string) error {
		if strings.HasPrefix(path, "signed/") {
			return nil
		}
		return errors.New("not signed")
	}
	tests := []struct {
		name, hosts string
		subnets     []netip.Prefix
		refused     []string // profiles named in the error; none: loads
	}{
		{name: "no Secure Boot anywhere", hosts: `[]`},
		{name: "host with secure_boot, no pin: its profile by rules",
			hosts:   `[{name: pc1, macs: ["52:54:00:00:00:01"], secure_boot: true}]`,
			refused: []string{`profile "lab" (reachable by Secure Boot host "pc1")`, `entry "install"`, `"unsigned/vmlinuz"`}},
		{name: "host with secure_boot, pinned", hosts: `[{name: pc1, macs: ["52:54:00:00:00:01"], secure_boot: true, profile: other}]`,
			refused: []string{`profile "other"`}},
		{name: "Secure Boot subnet: every profile an x64 client there can get",
			hosts: `[]`, subnets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
			refused: []string{`profile "lab" (reachable from Secure Boot subnet 192.0.2.0/24)`, `profile "other"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "profiles/p.yaml", profiles)
			write(t, dir, "hosts/h.yaml", tt.hosts)
			_, err := Load(Source{Dir: dir, CheckKernel: check, SecureBootSubnets: tt.subnets})
			if len(tt.refused) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("loaded; want a refusal")
			}
			for _, w := range tt.refused {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), `profile "arm"`) {
				t.Errorf("an efi-arm64 profile was checked for a Secure Boot x64 client:\n%v", err)
			}
		})
	}
}
