package check

import (
	"errors"
	"io/fs"
	"os"
)

// DataDir is the checklist's data_dir item. data_dir holds the store (API
// token hashes, leases, the boot log), the TLS key and, by default, the
// signing keys. One that group or others may write lets them replace
// those: the item fails. One they may only read lets them copy what is
// not 0600 (the store): the item warns, as serve does at every start.
// serve and init make it 0700.
func DataDir(dir string) Item {
	const name = "data_dir"
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Pass(name, "%s does not exist yet: serve makes it, mode 0700", dir)
	case err != nil:
		return Fail(name, "%v: serve cannot use it either", err)
	case !st.IsDir():
		return Fail(name, "%s is not a directory: serve cannot keep its store and keys there; set data_dir to a directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return Fail(name, "%v: this user cannot read data_dir; run bootforge check as the user serve runs as (or as root)", err)
	}
	f.Close()
	const holds = "it holds the store (token hashes, leases), the TLS key and the signing keys"
	switch perm := st.Mode().Perm(); {
	case perm&0o022 != 0:
		return Fail(name, "%s is mode %04o, writable by group or others: %s, which they could replace; chmod 0700 %s", dir, perm, holds, dir)
	case perm&0o077 != 0:
		return Warn(name, "%s is mode %04o, readable by group or others: %s; chmod 0700 %s", dir, perm, holds, dir)
	default:
		return Pass(name, "%s, mode %04o", dir, perm)
	}
}
