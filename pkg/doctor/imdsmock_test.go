package doctor

import (
	"testing"

	"github.com/ecs-remediator/ecs-remediator/test/aemm"
)

func startAEMM(t testing.TB, config string, flags ...string) string {
	t.Helper()
	return aemm.Start(t, config, flags...)
}
