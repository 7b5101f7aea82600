package e2e

import (
	"os"
	"regexp"
	"testing"
	"time"
)

func TestExplore4011(t *testing.T) {
	b := newBoot6Lab(t, "    mode: proxy\n    interfaces: [br0]\n", true, false)
	b.writeScript(t)
	startDnsmasq6(t, AddHost6(t, b.Lab, "2001:db8:1::2/64"))
	dump := b.Lab.Command("tcpdump", "-n", "-l", "-i", "br0", "-vv", "udp port 4011 or icmp6")
	var out syncBuffer
	dump.Stdout, dump.Stderr = &out, &out
	dump.Start()
	defer dump.Process.Kill()
	vm := StartVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi",
		Args: []string{"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no"}})
	vm.WaitFor(regexp.MustCompile(`PXE-E16|NBP file downloaded`), 90*time.Second)
	time.Sleep(time.Second)
	os.WriteFile("/tmp/explore4011.dump", []byte(out.String()+"\n----\n"+vm.Tail(30)), 0o644)
}
