package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadRootImages: a SIGHUP that moves root moves everything that
// reads it, not only the menus and files: the index mirrors sync from
// (curl, and a real `mirror sync`), the check of a mirror, the API's image
// list and its Secure Boot kernel check. Before, all of these kept reading
// the root the server started with: the index was empty, the API listed
// the old root's versions, and a sync installed nothing. A root replaced
// under the same path is followed as well.
func TestReloadRootImages(t *testing.T) {
	t.Parallel()
	need(t, "curl", "cp")
	base := kgRealDir(t)
	data := filepath.Join(base, "data")
	root1, root2 := filepath.Join(base, "r1"), filepath.Join(base, "r2")
	must(t, os.MkdirAll(root1, 0o755))
	src := t.TempDir()
	kernel, initrd := filepath.Join(src, "vmlinuz"), filepath.Join(src, "initrd.gz")
	must(t, os.WriteFile(kernel, []byte(strings.Repeat("kernel ", 1000)), 0o644))
	must(t, os.WriteFile(initrd, []byte(strings.Repeat("initrd ", 1000)), 0o644))
	buildActive := func(root, ref string) {
		t.Helper()
		e := imgEnv{root: root, data: data}
		e.mustBuild(t, ref, "--template", "linux", "--kernel", kernel, "--initrd", initrd)
		if out, code := clRun(t, time.Minute, nil, "image", "promote", ref, "--root", root, "--data-dir", data); code != 0 {
			t.Fatalf("image promote %s: exit %d\n%s", ref, code, out)
		}
	}
	buildActive(root1, "deb@1.0.0")

	// The mirror, a second bootforge, that the primary checks.
	mirror := newImgEnv(t)
	ms := StartServer(t, ServerOptions{Root: mirror.root, Args: []string{"--data-dir", mirror.data}})

	// Profile plain's kernel is only in root2, and signed there: a Secure
	// Boot host may use it once root2 is served.
	signed, _ := NetbootKernel(t)
	conf := filepath.Join(base, "bootforge.yaml")
	config := func(root string) string {
		return fmt.Sprintf(`root: %s
data_dir: %s
mirrors:
  - subnets: [198.51.100.0/24]
    url: http://%s
inventory:
  profiles:
    - name: plain
      menu:
        entries:
          - {name: linux, kind: linux, kernel: boot/vmlinuz}
`, root, data, ms.HTTPAddr)
	}
	must(t, os.WriteFile(conf, []byte(config(root1)), 0o644))
	s := kgSpawn(t, "--config", conf)
	s.WaitLog("bootforge ready", 10*time.Second)
	s.WaitLog("mirror not used", 10*time.Second)
	token, code := clRun(t, time.Minute, nil, "token", "create", "--role", "admin", "--config", conf)
	if code != 0 {
		t.Fatalf("token create: exit %d\n%s", code, token)
	}
	token = strings.TrimSpace(token)

	// root2 is a copy of root1 with the signed kernel; the config names it.
	if out, err := run(t, time.Minute, "cp", "-a", root1, root2); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	must(t, os.MkdirAll(filepath.Join(root2, "boot"), 0o755))
	copyFile(t, signed, filepath.Join(root2, "boot", "vmlinuz"))
	must(t, os.WriteFile(conf, []byte(config(root2)), 0o644))
	s.Signal(syscall.SIGHUP)
	s.WaitLog(`msg="config reloaded" root=`+root2, 10*time.Second)
	buildActive(root2, "deb@2.0.0")

	// The index served for mirrors is root2's.
	indexHas := func(want string) {
		t.Helper()
		code, body := hiCurl(t, "http://"+s.HTTPAddr+"/bootforge/images.json")
		var idx struct {
			Versions []struct{ Name, Version string }
		}
		if err := json.Unmarshal([]byte(body), &idx); code != 200 || err != nil {
			t.Fatalf("images.json: %d %v\n%s", code, err, body)
		}
		var got []string
		for _, v := range idx.Versions {
			got = append(got, v.Name+"@"+v.Version)
		}
		if strings.Join(got, " ") != want {
			t.Fatalf("images.json lists %v, want %s:\n%s", got, want, body)
		}
	}
	indexHas("deb@2.0.0")

	// So is the API's image list.
	apiHas := func(want ...string) {
		t.Helper()
		code, body := hiCurl(t, "-H", "Authorization: Bearer "+token, "http://"+s.APIAddr+"/api/v1/images")
		var list []struct{ Name, Version, State string }
		if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
			t.Fatalf("/api/v1/images: %d %v\n%s", code, err, body)
		}
		var got []string
		for _, v := range list {
			got = append(got, v.Name+"@"+v.Version+":"+v.State)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("/api/v1/images lists %v, want %v", got, want)
		}
	}
	apiHas("deb@1.0.0:retired", "deb@2.0.0:active")

	// The API checks a Secure Boot host's kernels in root2, where plain's
	// is signed (root1 has none).
	code, body := hiCurl(t, "-X", "PUT", "-H", "Authorization: Bearer "+token, "-H", "Content-Type: application/json",
		"--data", `{"macs":["52:54:00:aa:0f:01"],"profile":"plain","secure_boot":true}`, "http://"+s.APIAddr+"/api/v1/hosts/sb1")
	if code != 200 {
		t.Errorf("PUT a Secure Boot host whose kernel is signed in the new root: %d\n%s", code, body)
	}

	// A mirror syncs root2's active version from the index, and the
	// primary, asked to check again, verifies it on the mirror.
	out, rc := mirrorSync(t, "", "http://"+s.HTTPAddr, mirror)
	if rc != 0 || !strings.Contains(out, "deb@2.0.0 installed") {
		t.Fatalf("mirror sync after the reload: exit %d, want deb@2.0.0 installed:\n%s", rc, out)
	}
	s.Signal(syscall.SIGHUP)
	s.WaitLog("versions=deb@2.0.0", 20*time.Second)

	// root2 replaced under its path by a tree with deb@3.0.0: followed
	// without a reload.
	root3 := filepath.Join(base, "r3")
	if out, err := run(t, time.Minute, "cp", "-a", root2, root3); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	imgEnv{root: root3, data: data}.mustBuild(t, "deb@3.0.0", "--template", "linux", "--kernel", kernel, "--initrd", initrd)
	must(t, os.Rename(root2, root2+".old"))
	must(t, os.Rename(root3, root2))
	if out, code := clRun(t, time.Minute, nil, "image", "promote", "deb@3.0.0", "--root", root2, "--data-dir", data); code != 0 {
		t.Fatalf("image promote deb@3.0.0: exit %d\n%s", code, out)
	}
	s.WaitLog("root replaced; serving the new directory", 10*time.Second)
	indexHas("deb@3.0.0")
	apiHas("deb@1.0.0:retired", "deb@2.0.0:retired", "deb@3.0.0:active")
}
