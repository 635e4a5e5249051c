package doctor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxBody caps what doctor reads of any answer: every answer it expects is
// a small JSON document or a short list.
const maxBody = 64 << 10

// answer is one HTTP answer: its status, content type and (capped) body.
type answer struct {
	status      int
	contentType string
	body        []byte
}

// describe says what came back without quoting a byte of it: an answer of
// the credentials path may hold a SecretAccessKey.
func (a answer) describe() string {
	ct := a.contentType
	if ct == "" {
		ct = "no content type"
	}
	return fmt.Sprintf("HTTP %d, %s, %d bytes", a.status, ct, len(a.body))
}

// get performs one request and returns the status and (capped) body. A
// non-nil error means no HTTP answer at all.
func get(ctx context.Context, hc *http.Client, method, url string, header http.Header) (int, []byte, error) {
	a, err := getAnswer(ctx, hc, method, url, header)
	return a.status, a.body, err
}

// getAnswer is get with the answer's content type.
func getAnswer(ctx context.Context, hc *http.Client, method, url string, header http.Header) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return answer{}, fmt.Errorf("build request %s %s: %w", method, url, err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
	a.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return a, fmt.Errorf("read answer of %s %s: %w", method, url, err)
	}
	return a, nil
}

// snippet is a short, single-line excerpt of an answer for a Detail.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
