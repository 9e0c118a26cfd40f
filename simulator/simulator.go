// Package simulator is the command-line customer of the local simulated
// Messenger: it asks the simulated Messenger (package fakemeta, run by
// `parley dev`) to deliver what a customer does, signed and shaped exactly as
// Meta's webhooks, to the page's callback URL.
package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"parley/config"
)

// Main runs `parley sim <send|postback> ...`.
func Main(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: parley sim send --page ID --psid PSID TEXT | parley sim file --page ID --psid PSID [--type image|audio|video|file] PATH | parley sim postback --page ID --psid PSID --payload P [--title T]")
	}
	fs := flag.NewFlagSet("parley sim "+args[0], flag.ContinueOnError)
	page := fs.String("page", "", "Facebook page id the customer writes to")
	psid := fs.String("psid", "", "the customer's page-scoped id")
	simURL := fs.String("sim-url", cfg.SimURL, "the simulated Messenger's URL")
	payload := fs.String("payload", "", "postback payload")
	title := fs.String("title", "Get Started", "postback button title")
	fileType := fs.String("type", "", "file: Meta's attachment type (default: from the file's content)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *page == "" || *psid == "" {
		return errors.New("--page and --psid are required")
	}
	c := &Client{BaseURL: strings.TrimRight(*simURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
	var (
		res Result
		err error
	)
	switch args[0] {
	case "send":
		text := strings.Join(fs.Args(), " ")
		if strings.TrimSpace(text) == "" {
			return errors.New("send needs the message text")
		}
		res, err = c.Send(ctx, *page, *psid, text)
	case "file":
		if fs.NArg() != 1 {
			return errors.New("file needs one path")
		}
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("read the file to send: %w", err)
		}
		res, err = c.SendFile(ctx, *page, *psid, *fileType, data)
		if err != nil {
			return err
		}
	case "postback":
		if *payload == "" {
			return errors.New("postback needs --payload")
		}
		res, err = c.Postback(ctx, *page, *psid, *title, *payload)
	default:
		return fmt.Errorf("unknown sim command %q (send, file, postback)", args[0])
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "delivered %s to Parley's gateway: HTTP %d\n", res.MID, res.Status)
	return err
}

// Client talks to the simulated Messenger's control API.
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// Result is what the simulated Messenger reports after delivering a webhook.
type Result struct {
	MID    string `json:"mid"`
	Status int    `json:"status"`
}

// Send makes the customer psid write text to the page.
func (c *Client) Send(ctx context.Context, pageID, psid, text string) (Result, error) {
	return c.post(ctx, "/_fake/customer/messages", map[string]string{"page_id": pageID, "psid": psid, "text": text})
}

// SendFile makes the customer send a file; Meta's CDN (simulated) serves it
// under a link that expires. typ "" is guessed from the content.
func (c *Client) SendFile(ctx context.Context, pageID, psid, typ string, data []byte) (Result, error) {
	ct := http.DetectContentType(data)
	if typ == "" {
		typ = "file"
		for _, t := range []string{"image", "audio", "video"} {
			if strings.HasPrefix(ct, t+"/") {
				typ = t
			}
		}
	}
	return c.post(ctx, "/_fake/customer/files", map[string]any{"page_id": pageID, "psid": psid,
		"files": []map[string]any{{"type": typ, "content_type": ct, "data": data}}})
}

// Postback makes the customer press a button.
func (c *Client) Postback(ctx context.Context, pageID, psid, title, payload string) (Result, error) {
	return c.post(ctx, "/_fake/customer/postbacks", map[string]string{"page_id": pageID, "psid": psid, "title": title, "payload": payload})
}

func (c *Client) post(ctx context.Context, path string, body any) (Result, error) {
	var res Result
	b, err := json.Marshal(body)
	if err != nil {
		return res, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return res, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return res, fmt.Errorf("the simulated Messenger at %s is not reachable (is `make dev` running?): %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return res, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("the simulated Messenger answered %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("decode answer %q: %w", raw, err)
	}
	return res, nil
}
