package menu

import (
	"strings"
	"testing"
)

func TestGRUBSigned(t *testing.T) {
	r := req()
	r.Signed = true
	s, err := GRUB(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# bootforge profile lab\nset check_signatures=enforce\n",
		"  if linux '/images/d/vmlinuz' console=ttyS0 marker=lab-install host=pc1; then\n    echo 'bootforge: kernel verified'\n  else\n",
		"  if initrd '/images/d/initrd.gz'; then\n",
		"not booting'\n    sleep 10\n    reboot\n  fi\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\n  linux ") || strings.Contains(s, "\n  initrd ") {
		t.Errorf("an unguarded load in:\n%s", s)
	}
	// unsigned menus stay as they were
	plain, _ := GRUB(req())
	if strings.Contains(plain, "check_signatures") || strings.Contains(plain, "if linux") {
		t.Errorf("unsigned menu changed:\n%s", plain)
	}
}
