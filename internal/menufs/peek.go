package menufs

import (
	"errors"
	"io/fs"
	"strings"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/menu"
)

// Disk opens a file on the directory underneath, with no menu and no
// one-shot side effects.
func (m *FS) Disk(req bootfs.Request) (bootfs.File, error) {
	return (*m.disk.Load()).Open(req)
}

// PeekGRUB renders the per-client GRUB menu that name (cleaned;
// bootforge/grub/<mac>.cfg or .../grub.cfg-01-<mac>) would return to req,
// and the profile it comes from, without any side effect: no one-shot
// moves, nothing is logged or recorded. ok is false when name is not a
// generated per-client GRUB menu (a file on disk wins, as in Open).
func (m *FS) PeekGRUB(name string, req bootfs.Request) (text string, p boot.Profile, ok bool, err error) {
	var mac string
	base := name[strings.LastIndex(name, "/")+1:]
	switch {
	case strings.HasPrefix(base, "grub.cfg-01-"):
		mac = strings.TrimPrefix(base, "grub.cfg-01-")
	case strings.HasPrefix(name, "bootforge/grub/") && strings.HasSuffix(name, ".cfg"):
		mac = strings.TrimSuffix(strings.TrimPrefix(name, "bootforge/grub/"), ".cfg")
	default:
		return "", boot.Profile{}, false, nil
	}
	if !m.Inventory().HasProfiles() {
		return "", boot.Profile{}, false, nil
	}
	dreq := req
	dreq.Path = name
	if f, err := m.Disk(dreq); err == nil {
		f.Close()
		return "", boot.Profile{}, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", boot.Profile{}, false, err
	}
	hw, err := parseMAC(mac)
	if err != nil {
		return "", boot.Profile{}, false, nil
	}
	c := m.known(boot.Client{MAC: hw, IP: req.Client.Addr()})
	var shot *boot.NextBoot
	if m.OneShots != nil {
		if shot, err = m.OneShots.NextBoot(c.MAC); err != nil {
			return "", boot.Profile{}, true, err
		}
	}
	d, err := boot.Decide(c, m.Inventory(), shot, m.now())
	if err != nil {
		return "", boot.Profile{}, true, err
	}
	text, err = menu.Render(d, menu.FormatGRUB, menu.Site{BaseURL: menu.BaseURL(req.Protocol, req.Host)})
	return text, d.Choice.Profile, true, err
}
