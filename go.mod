module github.com/ecs-remediator/ecs-remediator

go 1.26.8

require (
	github.com/aymanbagabas/go-udiff v0.4.1 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
