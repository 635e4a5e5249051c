// Command credclient plays both ends of the task-role credentials path in
// the end-to-end suite, inside the container:
//
//	credclient serve [ADDR]   the stand-in ECS agent: serves
//	                          /v2/credentials/<id> on ADDR (default
//	                          127.0.0.1:51679) for the ids in CREDCLIENT_IDS
//	                          (default e2e-task)
//	credclient fetch          a task: resolves credentials with the AWS SDK
//	                          for Go v2's default chain from
//	                          AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, i.e.
//	                          http://169.254.170.2$URI, exactly as a task's
//	                          SDK does, and prints the access key id
//	                          (within CREDCLIENT_TIMEOUT, default 20s)
//	credclient get URL        GET URL (no proxy, 3s), print the body; exit 1
//	                          without a 2xx answer (a reachability probe for
//	                          images without curl; busybox's wget crashes
//	                          on this kernel)
//
// It is for tests only; it never calls AWS.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: credclient serve [ADDR] | credclient fetch | credclient get URL")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		addr := "127.0.0.1:51679"
		if len(os.Args) > 2 {
			addr = os.Args[2]
		}
		log.Fatal(serve(addr))
	case "fetch":
		if err := fetch(); err != nil {
			fmt.Fprintln(os.Stderr, "credclient fetch:", err)
			os.Exit(1)
		}
	case "get":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: credclient get URL")
			os.Exit(2)
		}
		if err := get(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "credclient get:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "credclient: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

// AccessKeyID is what the stand-in agent hands out; the test looks for it.
const AccessKeyID = "ASIAE2ETESTCREDENTIAL"

func serve(addr string) error {
	ids := map[string]bool{}
	for _, id := range strings.Split(envOr("CREDCLIENT_IDS", "e2e-task"), ",") {
		ids[id] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/credentials/", func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/v2/credentials/")
		log.Printf("credentials request for %q from %s (Host %s)", id, r.RemoteAddr, r.Host)
		if !ids[id] {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"code": "InvalidIdentifier", "message": "CredentialsV2Request: Credentials not found"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"RoleArn":         "arn:aws:iam::123456789012:role/e2e-task-role",
			"AccessKeyId":     AccessKeyID,
			"SecretAccessKey": "e2e-secret",
			"Token":           "e2e-session-token",
			"Expiration":      time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		})
	})
	log.Printf("stand-in ECS agent serving credentials on %s", addr)
	return http.ListenAndServe(addr, mux)
}

func fetch() error {
	if os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") == "" {
		return fmt.Errorf("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not set")
	}
	timeout, err := time.ParseDuration(envOr("CREDCLIENT_TIMEOUT", "20s"))
	if err != nil {
		return fmt.Errorf("CREDCLIENT_TIMEOUT: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		return err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("source=%s access_key_id=%s\n", creds.Source, creds.AccessKeyID)
	return nil
}

func get(url string) error {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	os.Stdout.Write(body)
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
