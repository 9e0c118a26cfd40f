package messenger

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// Values of SendRequest fields.
const (
	MessagingTypeResponse   = "RESPONSE"
	MessagingTypeUpdate     = "UPDATE"
	MessagingTypeMessageTag = "MESSAGE_TAG"

	// TagHumanAgent is the only tag Parley sends: the others were retired
	// and fail with error 100.
	TagHumanAgent = "HUMAN_AGENT"

	SenderActionMarkSeen  = "mark_seen"
	SenderActionTypingOn  = "typing_on"
	SenderActionTypingOff = "typing_off"

	AttachmentImage = "image"
	AttachmentAudio = "audio"
	AttachmentVideo = "video"
	AttachmentFile  = "file"

	// MaxTextLength is the longest text Meta accepts in one message, in
	// UTF-16 code units, as Meta counts them (see TextLength).
	MaxTextLength = 2000
)

// SendRequest is the body of POST /{version}/{page-id}/messages. Either
// Message or SenderAction is set, never both.
type SendRequest struct {
	Recipient     Recipient   `json:"recipient"`
	MessagingType string      `json:"messaging_type,omitempty"`
	Tag           string      `json:"tag,omitempty"`
	Message       *OutMessage `json:"message,omitempty"`
	SenderAction  string      `json:"sender_action,omitempty"`
}

// Recipient names the customer by PSID.
type Recipient struct {
	ID string `json:"id"`
}

// OutMessage is a message the page sends: text or one attachment, with
// optional quick replies and metadata (which comes back on the echo).
type OutMessage struct {
	Text         string         `json:"text,omitempty"`
	Attachment   *OutAttachment `json:"attachment,omitempty"`
	QuickReplies []QuickReply   `json:"quick_replies,omitempty"`
	Metadata     string         `json:"metadata,omitempty"`
}

// OutAttachment is an attachment by URL or by a previously uploaded
// attachment_id.
type OutAttachment struct {
	Type    string            `json:"type"`
	Payload AttachmentPayload `json:"payload"`
}

// AttachmentPayload holds either URL (with IsReusable) or AttachmentID.
type AttachmentPayload struct {
	URL          string `json:"url,omitempty"`
	IsReusable   bool   `json:"is_reusable,omitempty"`
	AttachmentID string `json:"attachment_id,omitempty"`
}

// QuickReply is one quick-reply button.
type QuickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title,omitempty"`
	Payload     string `json:"payload,omitempty"`
}

// SendResponse is Meta's answer to a send. MessageID is empty for sender actions.
type SendResponse struct {
	RecipientID string `json:"recipient_id"`
	MessageID   string `json:"message_id"`
	// Usage is Meta's X-Business-Use-Case-Usage header, if it sent one.
	Usage *Usage `json:"-"`
}

// Send calls the Send API: POST /{version}/{page-id}/messages with req as
// the JSON body. Requests Meta is known to reject (no recipient, a message
// together with a sender action, a tag other than HUMAN_AGENT or without
// MESSAGE_TAG, text over MaxTextLength UTF-16 units) fail locally with
// ErrInvalidRequest. A refusal by Meta is a
// *GraphError; see its Class.
func (c *Client) Send(ctx context.Context, auth PageAuth, req SendRequest) (SendResponse, error) {
	if err := auth.check(); err != nil {
		return SendResponse{}, err
	}
	seg, err := segment("page id", auth.PageID)
	if err != nil {
		return SendResponse{}, err
	}
	if err := req.validate(); err != nil {
		return SendResponse{}, err
	}
	var resp SendResponse
	if err := c.do(ctx, OpSend, http.MethodPost, "/"+seg+"/messages", auth.query(), req, auth.secrets(), &resp); err != nil {
		return SendResponse{}, err
	}
	return resp, nil
}

func (r SendRequest) validate() error {
	switch {
	case r.Recipient.ID == "":
		return fmt.Errorf("%w: no recipient id", ErrInvalidRequest)
	case r.Message == nil && r.SenderAction == "":
		return fmt.Errorf("%w: neither a message nor a sender action", ErrInvalidRequest)
	case r.Message != nil && r.SenderAction != "":
		return fmt.Errorf("%w: a sender action is sent alone, without a message", ErrInvalidRequest)
	case r.Tag != "" && r.Tag != TagHumanAgent:
		return fmt.Errorf("%w: tag %q is not sent (only %s)", ErrInvalidRequest, r.Tag, TagHumanAgent)
	case r.Tag != "" && r.MessagingType != MessagingTypeMessageTag:
		return fmt.Errorf("%w: a tag needs messaging_type %s", ErrInvalidRequest, MessagingTypeMessageTag)
	case r.MessagingType == MessagingTypeMessageTag && r.Tag == "":
		return fmt.Errorf("%w: messaging_type %s needs a tag", ErrInvalidRequest, MessagingTypeMessageTag)
	case r.Message != nil && TextLength(r.Message.Text) > MaxTextLength:
		// Meta would refuse it with 100; SplitText makes parts that fit.
		return fmt.Errorf("%w: text of %d UTF-16 units, more than %d", ErrInvalidRequest, TextLength(r.Message.Text), MaxTextLength)
	}
	return nil
}

// TextLength is the length of s as Meta counts it: UTF-16 code units (an
// emoji outside the Basic Multilingual Plane counts 2). Invalid bytes count
// as U+FFFD, one unit each.
func TextLength(s string) int {
	n := 0
	for _, r := range s {
		n += utf16Len(r)
	}
	return n
}

func utf16Len(r rune) int {
	if r >= 0x10000 && r <= unicode.MaxRune {
		return 2
	}
	return 1
}

// SplitText splits text into chunks of at most max UTF-16 units, as Meta
// counts (max <= 0 means MaxTextLength), breaking preferably between
// paragraphs, then lines, then sentences, then words, and only as a last
// resort inside a word: between grapheme clusters, and inside one only if it
// alone exceeds max (never inside a rune, so never inside a surrogate pair). Order is kept. The
// whitespace at a break is dropped and no chunk is empty or blank; text that
// fits is returned unchanged.
func SplitText(text string, max int) []string {
	if max <= 0 {
		max = MaxTextLength
	}
	var chunks []string
	rest := text
	for rest != "" {
		cut, fits := unitPrefix(rest, max)
		if fits {
			if strings.TrimSpace(rest) != "" {
				chunks = append(chunks, rest)
			}
			break
		}
		end, next := breakPoint(rest, cut)
		if chunk := strings.TrimRightFunc(rest[:end], unicode.IsSpace); strings.TrimSpace(chunk) != "" {
			chunks = append(chunks, chunk)
		}
		rest = strings.TrimLeftFunc(rest[next:], unicode.IsSpace)
	}
	return chunks
}

// unitPrefix returns the byte length of the longest prefix of s of whole
// runes within max UTF-16 units (never half a surrogate pair), and whether
// all of s fits. Invalid bytes count as one unit each and are kept as they
// are.
func unitPrefix(s string, max int) (int, bool) {
	i, n := 0, 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if n+utf16Len(r) > max {
			if i == 0 { // max < 2 and an astral rune: take it whole
				return size, size >= len(s)
			}
			return i, false
		}
		n += utf16Len(r)
		i += size
	}
	return len(s), true
}

// breakPoint picks where to end the chunk that starts rest and may use
// rest[:cut]: the chunk is rest[:end], the remainder starts at rest[next:].
// A separator may start at cut (just past the window) since it is dropped.
func breakPoint(rest string, cut int) (end, next int) {
	usable := func(i int) bool { return i > 0 && strings.TrimSpace(rest[:i]) != "" }
	// Paragraph, then line: the separator may begin right at cut.
	for _, sep := range []string{"\n\n", "\n"} {
		lim := min(len(rest), cut+len(sep))
		if i := strings.LastIndex(rest[:lim], sep); usable(i) {
			return i, i + len(sep)
		}
	}
	// Sentence: after . ! ? … followed by whitespace, or after CJK 。！？.
	sentence := -1
	for i := 0; i < cut; {
		r, size := utf8.DecodeRuneInString(rest[i:])
		after := i + size
		i = after
		switch r {
		case '.', '!', '?', '…':
			if nr, _ := utf8.DecodeRuneInString(rest[after:]); after < len(rest) && unicode.IsSpace(nr) {
				sentence = after
			}
		case '。', '！', '？':
			sentence = after
		}
	}
	if usable(sentence) {
		return sentence, sentence
	}
	// Word: the last whitespace at or before cut.
	space := -1
	for i, r := range rest[:min(len(rest), cut+utf8.UTFMax)] {
		if i > cut {
			break
		}
		if unicode.IsSpace(r) {
			space = i
		}
	}
	if usable(space) {
		_, size := utf8.DecodeRuneInString(rest[space:])
		return space, space + size
	}
	c := hardCut(rest, cut)
	return c, c
}

// hardCut moves cut back to the last grapheme cluster boundary (UAX #29:
// emoji ZWJ sequences, flags, skin tones, combining and spacing marks,
// Hangul syllables stay whole), unless the first cluster alone is longer
// than cut: then it is cut at the rune boundary.
func hardCut(s string, cut int) int {
	end, state := 0, -1
	for rest := s; rest != ""; {
		var cluster string
		cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if end+len(cluster) > cut {
			break
		}
		end += len(cluster)
	}
	if end == 0 {
		return cut
	}
	return end
}
