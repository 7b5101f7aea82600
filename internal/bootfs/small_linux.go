package bootfs

import (
	"bytes"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Small files served again are answered from memory. A boot root's small
// files (iPXE scripts, pxelinux and its modules, BCD, wimboot) are fetched
// by every client of a storm, and serving one from disk costs an openat2,
// an fstat, a read and a close. A file whose content was read before costs
// one fstatat instead, which confirms that the name still leads to the
// same version of the same file: its fileKey (device, inode, size, mtime,
// ctime) names one content once the file has settled, as private.go
// explains.
//
// Only files that passed every check of a real open (beneath the root, a
// regular file, not private) are kept, and only once settled. A name that
// leads elsewhere since (a symlink flipped, a file renamed over it,
// written to) has another key, so it is forgotten and opened again with
// every check, as a new name is.
//
// One fstatat confirms a file for the requests of the next millisecond
// (reconfirmAfter): a storm asks for the same few files thousands of
// times a second, and the fstatat was a tenth of the server's CPU on an
// 8 KiB file. A request in that millisecond gets what one a millisecond
// earlier would have got; a change is seen by the first request after it.

const (
	// smallFileMax is the largest file kept: larger ones go out by
	// sendfile(2), which copies nothing through user space.
	smallFileMax = 64 << 10
	// smallFilesMax bounds the bytes kept in all; when full, everything
	// is forgotten and kept again as files are served.
	smallFilesMax = 16 << 20
	// reconfirmAfter is how long an fstatat's confirmation stands.
	reconfirmAfter = time.Millisecond
)

type smallFiles struct {
	mu        sync.Mutex
	byName    map[string]*smallFile // by the name the client asked for, cleaned
	bytes     int
	reconfirm time.Duration // reconfirmAfter; 0 in tests that change files at once
}

// smallFile is one file's content, as read when its Stat was info.
type smallFile struct {
	name string // below the root, as opened
	key  fileKey
	info fileInfo
	data []byte
	// confirmed is when an fstatat last found name leading to this file
	// unchanged, as monotonic time since confirmEpoch.
	confirmed atomic.Int64
}

// confirmEpoch is the origin of smallFile.confirmed: time.Since reads
// the monotonic clock, which a change of the wall clock does not move.
var confirmEpoch = time.Now()

func (s *smallFiles) get(name string) *smallFile {
	s.mu.Lock()
	f := s.byName[name]
	s.mu.Unlock()
	return f
}

func (s *smallFiles) put(name string, f *smallFile) {
	s.mu.Lock()
	if s.byName == nil || s.bytes+len(f.data) > smallFilesMax || len(s.byName) >= maxMemory {
		s.byName = make(map[string]*smallFile)
		s.bytes = 0
	}
	if old := s.byName[name]; old != nil {
		s.bytes -= len(old.data)
	}
	s.byName[name] = f
	s.bytes += len(f.data)
	s.mu.Unlock()
}

func (s *smallFiles) forget(name string, f *smallFile) {
	s.mu.Lock()
	if s.byName[name] == f {
		delete(s.byName, name)
		s.bytes -= len(f.data)
	}
	s.mu.Unlock()
}

// openSmall returns the content kept for name if the name still leads to
// the file it was read from, unchanged.
func (d *Dir) openSmall(name string) (File, bool) {
	if d.beneath == nil {
		return nil, false
	}
	f := d.small.get(name)
	if f == nil {
		return nil, false
	}
	if now := int64(time.Since(confirmEpoch)); now-f.confirmed.Load() >= int64(d.small.reconfirm) {
		var st unix.Stat_t
		if err := d.beneath.stat(f.name, &st); err != nil || statKey(&st) != f.key {
			d.small.forget(name, f)
			return nil, false
		}
		f.confirmed.Store(now)
	}
	return &memFile{Reader: bytes.NewReader(f.data), info: &f.info, name: f.name}, true
}

// keepSmall keeps the content of f, opened for the request's name as
// name and found servable, if it is small and settled. A name found by
// ignoring case is not kept: a file spelled as asked, made later, must
// win, and only a lookup sees it.
func (d *Dir) keepSmall(asked, name string, f File, st fs.FileInfo) {
	info, ok := st.(*fileInfo)
	if !ok || d.beneath == nil || info.Size() > smallFileMax || asked != name {
		return
	}
	key, ok := identify(st)
	if !ok || time.Since(time.Unix(0, key.ctime)) < d.clean.settle {
		return
	}
	data := make([]byte, info.Size())
	if n, _ := f.ReadAt(data, 0); n != len(data) {
		return
	}
	kept := &smallFile{name: name, key: key, info: *info, data: data}
	kept.confirmed.Store(int64(time.Since(confirmEpoch))) // the open confirmed it
	d.small.put(asked, kept)
}

// statKey is the fileKey of an fstatat's answer.
func statKey(st *unix.Stat_t) fileKey {
	return fileKey{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// memFile is a small file's content kept in memory, with the Stat of the
// file it was read from.
type memFile struct {
	*bytes.Reader
	info *fileInfo
	name string // below the root
}

func (m *memFile) Stat() (fs.FileInfo, error) { return m.info, nil }
func (m *memFile) Close() error               { return nil }
