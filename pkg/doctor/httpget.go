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

// get performs one request and returns the status and (capped) body. A
// non-nil error means no HTTP answer at all.
func get(ctx context.Context, hc *http.Client, method, url string, header http.Header) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("build request %s %s: %w", method, url, err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, body, fmt.Errorf("read answer of %s %s: %w", method, url, err)
	}
	return resp.StatusCode, body, nil
}

// snippet is a short, single-line excerpt of an answer for a Detail.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
