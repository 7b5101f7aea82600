package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/menu"
)

// Warnings lists settings that are probably mistakes but do not stop
// bootforge: a file a menu or loader names that is not in root (it may be
// copied there later), an unknown {placeholder}, pools that proxy mode
// ignores, a misspelled BOOTFORGE_* variable, root left to its default by
// a config file. Each names the file and line, or the variable or flag,
// and the key. It looks at root and the environment as they are now, so
// call it when the config is loaded.
func (c Config) Warnings() Errors {
	var ws Errors
	warn := func(key, format string, args ...any) {
		e := &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
		c.place(e)
		ws = append(ws, e)
	}
	if c.from.file != "" && !c.IsSet("root") {
		warn("root", "not set; serving the default %s (was the file cut short?)", c.Root)
	}
	dir, err := bootfs.OpenDir(c.Root, c.TFTP.CaseInsensitive)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		warn("root", "%s does not exist: nothing is served until files are put there", c.Root)
	case err != nil:
		warn("root", "%v", err)
	default:
		defer dir.Close()
	}
	if dir != nil && c.DHCP.Mode != "off" {
		for _, f := range loaderFiles(c.DHCP.Loaders) {
			if msg := missing(dir, f.path); msg != "" {
				warn("dhcp.loaders."+f.key, "%s (set it to \"\" if no such client boots here)", msg)
			}
		}
	}
	for i, p := range c.Inventory.Profiles {
		_, pw := checkProfile(dir, p)
		for _, e := range pw {
			warn(fmt.Sprintf("inventory.profiles[%d].%s", i, e.Key), "%s", e.Msg)
		}
	}
	if c.DHCP.Mode == "proxy" {
		for i, s := range c.DHCP.Subnets {
			if len(s.Pools) > 0 {
				warn(fmt.Sprintf("dhcp.subnets[%d].pools", i), "proxy mode gives no addresses: these pools are ignored")
			}
		}
	}
	ws = append(ws, c.emptyListEnv(os.Environ())...)
	return append(ws, EnvWarnings()...)
}

// emptyListEnv warns about each variable of a list key in environ that
// is set empty while c's list is not: an empty variable is as if it were
// not set (a service manager's template writes VAR= for a value left
// out), so it does not empty the file's list, as the operator may have
// meant. An allow-list emptied by a template's blank would let everyone
// in; "[]" says the empty list on purpose.
func (c Config) emptyListEnv(environ []string) Errors {
	set := map[string]bool{}
	for _, kv := range environ {
		if name, value, _ := strings.Cut(kv, "="); value == "" {
			set[name] = true
		}
	}
	var ws Errors
	for _, key := range Keys() {
		name := EnvName(key)
		v, _ := c.setting(key)
		if !set[name] || !isList(v.Type()) || v.Len() == 0 {
			continue
		}
		ws = append(ws, &Error{Key: name, Msg: fmt.Sprintf("set but empty, so ignored, as every BOOTFORGE_* variable set empty is: %s stays %v; %s=[] is the empty list",
			key, v.Interface(), name)})
	}
	return ws
}

// EnvWarnings are the warnings about this process's environment: each
// BOOTFORGE_* variable that names no setting. Warnings includes them;
// a command that needs no other warning asks for these alone.
func EnvWarnings() Errors { return unknownEnv(os.Environ()) }

// CheckProfile checks the files and command lines of one profile's menus,
// wherever the profile was written (the config, an inventory file). A path
// that the serving rules refuse — one that leaves root, like
// ../../etc/passwd — can never be served, and is an error; a file not in
// root, an unknown {placeholder}, or a command line a loader cannot hand
// the kernel as written (menu.CheckEntry: that loader's menus leave the
// entry out, and a one-shot of it is refused), is a warning. Keys are relative to the
// profile ("menu.entries[0].kernel"); root empty skips the file lookups.
func CheckProfile(root string, caseInsensitive bool, p Profile) (errs, warns Errors) {
	var dir *bootfs.Dir
	if root != "" {
		if d, err := bootfs.OpenDir(root, caseInsensitive); err == nil {
			defer d.Close()
			dir = d
		}
	}
	return checkProfile(dir, p)
}

func checkProfile(dir *bootfs.Dir, p Profile) (errs, warns Errors) {
	menus := []struct {
		key string
		m   Menu
	}{{"menu", p.Menu}}
	variants := make([]string, 0, len(p.Variants))
	for fw := range p.Variants {
		variants = append(variants, fw)
	}
	sort.Strings(variants)
	for _, fw := range variants {
		menus = append(menus, struct {
			key string
			m   Menu
		}{"variants." + fw, p.Variants[fw]})
	}
	for _, m := range menus {
		for i, e := range m.m.Entries {
			ekey := fmt.Sprintf("%s.entries[%d]", m.key, i)
			for _, f := range entryFiles(e) {
				if strings.Contains(f.path, "://") {
					continue // a URL, fetched from elsewhere
				}
				if _, err := bootfs.Clean(f.path); err != nil && errors.Is(err, bootfs.ErrRefused) {
					errs = append(errs, &Error{Key: ekey + "." + f.key, Msg: fmt.Sprintf("%q can never be served: %v", f.path, err)})
					continue
				}
				if dir == nil {
					continue
				}
				if msg := missing(dir, f.path); msg != "" {
					warns = append(warns, &Error{Key: ekey + "." + f.key, Msg: msg})
				}
			}
			for _, name := range menu.UnknownPlaceholders(e.Cmdline) {
				warns = append(warns, &Error{Key: ekey + ".cmdline", Msg: fmt.Sprintf("{%s} is not a placeholder%s; it reaches the kernel as written (known: {%s})",
					name, suggestName(name, menu.Placeholders), strings.Join(menu.Placeholders, "}, {"))})
			}
			// Counted with the entry's paths, as the loaders write them
			// before the words (BOOT_IMAGE=, initrd=). An image entry's
			// paths and its image's own command line are the image's:
			// image build checks those.
			if err := menu.CheckEntry(boot.Entry{Kind: boot.KindLinux, Kernel: e.Kernel, Initrds: e.Initrds, Cmdline: e.Cmdline}); err != nil {
				warns = append(warns, &Error{Key: ekey + ".cmdline", Msg: err.Error()})
			}
		}
	}
	return errs, warns
}

// file is one path a setting names, under its key.
type file struct{ key, path string }

// entryFiles are the files in root an entry names.
func entryFiles(e Entry) []file {
	var out []file
	add := func(key, path string) {
		if path != "" {
			out = append(out, file{key, path})
		}
	}
	add("kernel", e.Kernel)
	for i, p := range e.Initrds {
		add(fmt.Sprintf("initrds[%d]", i), p)
	}
	add("wimboot", e.Wimboot)
	add("bootmgr", e.Bootmgr)
	add("bcd", e.BCD)
	add("boot_sdi", e.BootSDI)
	add("boot_wim", e.BootWIM)
	add("iso", e.ISO)
	return out
}

// loaderFiles are the first-stage loaders, by key under dhcp.loaders.
func loaderFiles(l Loaders) []file {
	return []file{{"bios", l.BIOS}, {"efi_x64", l.EFIx64}, {"efi_ia32", l.EFIia32}, {"efi_arm64", l.EFIarm64},
		{"efi_arm32", l.EFIarm32}, {"http_x64", l.HTTPx64}, {"http_arm64", l.HTTParm64}, {"secure_boot_x64", l.SecureBootX64}}
}

// missing says why dir does not serve path, or "" if it does.
func missing(dir *bootfs.Dir, path string) string {
	if path == "" {
		return ""
	}
	f, err := dir.Open(bootfs.Request{Path: path})
	if err == nil {
		f.Close()
		return ""
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("%q is not in root %s", path, dir.Path())
	}
	return fmt.Sprintf("%q in root %s cannot be served: %v", path, dir.Path(), err)
}

// otherEnv are the variables bootforge reads that are not settings.
var otherEnv = []string{"BOOTFORGE_CONFIG"}

// testEnvPrefix starts the test suite's own variables
// (BOOTFORGE_TEST_POSTGRES names the store tests' PostgreSQL), which the
// commands the tests run inherit and never read.
const testEnvPrefix = "BOOTFORGE_TEST_"

// unknownEnv warns about each BOOTFORGE_* variable in environ that names
// no setting: it is ignored, and most likely a typo.
func unknownEnv(environ []string) Errors {
	known := otherEnv
	for _, key := range Keys() {
		known = append(known, EnvName(key))
	}
	for name := range envAliases {
		known = append(known, name)
	}
	sort.Strings(known)
	var ws Errors
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "BOOTFORGE_") || strings.HasPrefix(name, testEnvPrefix) {
			continue
		}
		if i := sort.SearchStrings(known, name); i < len(known) && known[i] == name {
			continue
		}
		ws = append(ws, &Error{Key: name, Msg: "not a bootforge variable; ignored" + suggestName(name, known)})
	}
	return ws
}

// suggestName names the closest of names to s, if one is close.
func suggestName(s string, names []string) string {
	best, bestDist := "", max(3, len(s)/4)+1
	for _, n := range names {
		if d := levenshtein(s, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
