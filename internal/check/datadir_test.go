package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// data_dir holds the store and the keys: the item fails when group or
// others may write it and warns when they may read it, naming the mode
// and the chmod that fixes it.
func TestDataDirItem(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		mode   os.FileMode // 0: not made
		status string
		want   []string
	}{
		{"private", 0o700, "pass", []string{"mode 0700"}},
		{"group reads", 0o750, "warn", []string{"mode 0750", "readable by group or others", "chmod 0700"}},
		{"others read", 0o705, "warn", []string{"mode 0705", "readable", "chmod 0700"}},
		{"others write", 0o777, "fail", []string{"mode 0777", "writable by group or others", "chmod 0700"}},
		{"group writes", 0o770, "fail", []string{"mode 0770", "writable"}},
		{"not made yet", 0, "pass", []string{"does not exist yet", "0700"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(base, strings.ReplaceAll(tt.name, " ", "-"))
			if tt.mode != 0 {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tt.mode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			it := DataDir(dir)
			if it.Status != tt.status || it.Name != "data_dir" {
				t.Fatalf("%+v, want status %s", it, tt.status)
			}
			for _, w := range append(tt.want, dir) {
				if !strings.Contains(it.Detail, w) {
					t.Errorf("%q lacks %q", it.Detail, w)
				}
			}
		})
	}
	if Failed([]Item{DataDir(filepath.Join(base, "group-reads"))}) {
		t.Error("a warning fails the checklist")
	}
	if it := DataDir(file); it.Status != "fail" || !strings.Contains(it.Detail, "not a directory") {
		t.Errorf("a file as data_dir: %+v", it)
	}
	if it := DataDir(filepath.Join(file, "sub")); it.Status != "fail" {
		t.Errorf("below a file: %+v", it)
	}
}
