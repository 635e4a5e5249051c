package doctor

import (
	"os"
	"path/filepath"
	"strings"
)

// ec2Evidence is what sysfs says about the machine, used only to word the
// verdict when IMDS does not answer.
type ec2Evidence int

const (
	ec2Unknown ec2Evidence = iota // nothing readable: containers, unusual kernels
	ec2Yes                        // DMI or the Xen hypervisor uuid names EC2
	ec2No                         // DMI readable and names another vendor
)

// detectEC2 reads the identifiers EC2 documents for telling an instance
// apart: DMI sys_vendor/bios_vendor "Amazon EC2" (Nitro), a Xen
// hypervisor uuid or DMI product_uuid starting with "ec2", or a bios_version
// containing "amazon" (older Xen instances). It also returns what it saw.
func detectEC2(sysRoot string) (ec2Evidence, string) {
	read := func(rel string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(sysRoot, rel))
		if err != nil {
			return "", false
		}
		return strings.TrimSpace(string(b)), true
	}
	seen := ""
	anyRead := false
	for _, f := range []string{"class/dmi/id/sys_vendor", "class/dmi/id/bios_vendor"} {
		if v, ok := read(f); ok {
			anyRead = true
			if seen == "" {
				seen = f[len("class/dmi/id/"):] + "=" + v
			}
			if strings.Contains(strings.ToLower(v), "amazon ec2") {
				return ec2Yes, f[len("class/dmi/id/"):] + "=" + v
			}
		}
	}
	for _, f := range []string{"hypervisor/uuid", "class/dmi/id/product_uuid"} {
		if v, ok := read(f); ok {
			anyRead = true
			if strings.HasPrefix(strings.ToLower(v), "ec2") {
				return ec2Yes, f + " starts with ec2"
			}
		}
	}
	if v, ok := read("class/dmi/id/bios_version"); ok {
		anyRead = true
		if strings.Contains(strings.ToLower(v), "amazon") {
			return ec2Yes, "bios_version=" + v
		}
	}
	if !anyRead {
		return ec2Unknown, "no DMI or hypervisor identifiers readable under " + sysRoot
	}
	return ec2No, seen
}
