package main

import (
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// The probe looks for the bridge check judges: the one Docker reports as
// its default, docker0 without an answer, the policy's list when set.
func TestDoctorTaskBridgesFollowDocker(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"Name":"bridge","Driver":"bridge","Options":{"com.docker.network.bridge.default_bridge":"true","com.docker.network.bridge.name":"br-ecs"}}]`))
	})}
	go srv.Serve(l)
	defer srv.Close()

	p := policy.Default()
	p.Network.DockerSocket = sock
	if got := doctorTaskBridges(p); !reflect.DeepEqual(got, []string{"br-ecs"}) {
		t.Errorf("with Docker answering: %v, want [br-ecs]", got)
	}
	p.Network.DockerSocket = filepath.Join(t.TempDir(), "absent.sock")
	if got := doctorTaskBridges(p); !reflect.DeepEqual(got, []string{"docker0"}) {
		t.Errorf("without Docker: %v, want [docker0]", got)
	}
	p.Network.TaskBridges = []string{"cni0", "br-+"}
	if got := doctorTaskBridges(p); !reflect.DeepEqual(got, p.Network.TaskBridges) {
		t.Errorf("with network.task_bridges set: %v", got)
	}
}
