package doctor

import (
	"os"
	"path/filepath"
	"testing"
)

// writeSys builds a sysfs fixture tree.
func writeSys(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, v := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetectEC2(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  ec2Evidence
	}{
		{"nitro", map[string]string{"class/dmi/id/sys_vendor": "Amazon EC2", "class/dmi/id/bios_vendor": "Amazon EC2"}, ec2Yes},
		{"xen hypervisor uuid", map[string]string{"hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef", "class/dmi/id/sys_vendor": "Xen"}, ec2Yes},
		{"xen bios version", map[string]string{"class/dmi/id/sys_vendor": "Xen", "class/dmi/id/bios_version": "4.2.amazon"}, ec2Yes},
		{"product uuid upper case", map[string]string{"class/dmi/id/product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF"}, ec2Yes},
		{"qemu", map[string]string{"class/dmi/id/sys_vendor": "QEMU", "class/dmi/id/bios_vendor": "SeaBIOS"}, ec2No},
		{"nothing readable", map[string]string{}, ec2Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := detectEC2(writeSys(t, tc.files))
			if got != tc.want {
				t.Fatalf("detectEC2 = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}
