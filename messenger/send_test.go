package messenger

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSplitTextExamples(t *testing.T) {
	tests := []struct {
		name string
		text string
		max  int
		want []string
	}{
		{"empty", "", 10, nil},
		{"blank", " \n\n\t ", 10, nil},
		{"fits unchanged", "  hello \n", 10, []string{"  hello \n"}},
		{"exactly max", "abcdefghij", 10, []string{"abcdefghij"}},
		{"paragraph first", "One two.\n\nThree four five six seven", 20, []string{"One two.", "Three four five six", "seven"}},
		{"paragraph beats later line", "aaaa\n\nbbbb\ncccc dddd", 16, []string{"aaaa", "bbbb\ncccc dddd"}},
		{"line before sentence", "First. Second.\nThird line here", 20, []string{"First. Second.", "Third line here"}},
		{"sentence before space", "Hi there. How are you doing", 20, []string{"Hi there.", "How are you doing"}},
		{"question and exclamation", "Really? Yes! Sure thing friend", 14, []string{"Really? Yes!", "Sure thing", "friend"}},
		{"a sentence end needs a space", "v1.2 is out now ok", 10, []string{"v1.2 is", "out now ok"}},
		{"space", "alpha beta gamma delta", 11, []string{"alpha beta", "gamma delta"}},
		{"separator right after the window", "abcde fghij", 5, []string{"abcde", "fghij"}},
		{"hard cut", "abcdefghijklmnopqrstuvwxyz", 10, []string{"abcdefghij", "klmnopqrst", "uvwxyz"}},
		{"runes not bytes", "ääääääääää", 4, []string{"ääää", "ääää", "ää"}},
		{"CJK sentence", "你好。今天怎么样？很好", 4, []string{"你好。", "今天怎么", "样？很好"}},
		{"max <= 0 means MaxTextLength", "short", 0, []string{"short"}},
		{"blank chunks dropped", "a\n\n\n\n\n\n\n\n\n\n\n\nb", 3, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SplitText(tt.text, tt.max); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitText(%q, %d) = %q, want %q", tt.text, tt.max, got, tt.want)
			}
		})
	}
}

func TestSplitTextKeepsEmojiSequences(t *testing.T) {
	family := "👨\u200d👩\u200d👧" // man ZWJ woman ZWJ girl: 8 UTF-16 units
	got := SplitText("ab"+family, 8)
	if want := []string{"ab", family}; !reflect.DeepEqual(got, want) {
		t.Errorf("ZWJ sequence: %q, want %q", got, want)
	}
	thumbs := "👍🏽" // thumbs up + skin tone
	if got, want := SplitText("abc"+thumbs, 4), []string{"abc", thumbs}; !reflect.DeepEqual(got, want) {
		t.Errorf("skin tone: %q, want %q", got, want)
	}
	accent := "e\u0301" // e + combining acute
	if got, want := SplitText("abc"+accent+"f", 4), []string{"abc", accent + "f"}; !reflect.DeepEqual(got, want) {
		t.Errorf("combining mark: %q, want %q", got, want)
	}
	flags := "🇩🇪🇫🇷🇮🇹" // three flags, six regional indicators, 12 units
	if got, want := SplitText("a"+flags, 8), []string{"a🇩🇪", "🇫🇷🇮🇹"}; !reflect.DeepEqual(got, want) {
		t.Errorf("flags: %q, want %q", got, want)
	}
	// Spacing marks and Hangul jamo belong to the cluster too (UAX #29).
	ka := "का" // Devanagari ka + vowel sign aa (a spacing mark)
	if got, want := SplitText("abc"+ka, 4), []string{"abc", ka}; !reflect.DeepEqual(got, want) {
		t.Errorf("spacing mark: %q, want %q", got, want)
	}
	han := "한" // 한 as three conjoining jamo
	if got, want := SplitText("ab"+han, 4), []string{"ab", han}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hangul jamo: %q, want %q", got, want)
	}
	// A sequence longer than max must still be cut somewhere.
	if got := SplitText(strings.Repeat("e\u0301", 5), 3); strings.Join(got, "") != strings.Repeat("e\u0301", 5) {
		t.Errorf("unsplittable sequence lost text: %q", got)
	}
}

func TestSplitTextInvalidUTF8Kept(t *testing.T) {
	text := "ab\xffcd\xfeef"
	got := SplitText(text, 3)
	if strings.Join(got, "") != text {
		t.Errorf("invalid bytes changed: %q", got)
	}
}

// Properties on random text: chunks are non-blank, within max UTF-16 units, valid
// wherever the input was, and only whitespace at breaks is dropped.
func TestSplitTextProperties(t *testing.T) {
	pieces := []string{"a", "bc", "Wort", "ä", "日本", "😀", "👍🏽", "e\u0301", " ", " ", " ", "\n", "\n\n", ". ", "! ", "。", "\t", "…"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		var b strings.Builder
		for range r.IntN(120) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		text := b.String()
		max := 1 + r.IntN(25)
		if i%10 == 0 {
			max = MaxTextLength
		}
		chunks := SplitText(text, max)
		for _, c := range chunks {
			if strings.TrimSpace(c) == "" {
				t.Fatalf("SplitText(%q, %d): blank chunk in %q", text, max, chunks)
			}
			// Only a lone astral rune may exceed a limit of 1 unit.
			if n := TextLength(c); n > max && !(max == 1 && utf8.RuneCountInString(c) == 1) {
				t.Fatalf("SplitText(%q, %d): chunk %q has %d UTF-16 units", text, max, c, n)
			}
			// Clusters of up to 4 units stay whole when max allows.
			if r, _ := utf8.DecodeRuneInString(c); max >= 4 && (r == 0x1F3FD || r == 0x0301) {
				t.Fatalf("SplitText(%q, %d): chunk %q starts inside a grapheme cluster", text, max, c)
			}
			if !utf8.ValidString(c) {
				t.Fatalf("SplitText(%q, %d): chunk %q split a rune", text, max, c)
			}
		}
		if got, want := stripSpace(strings.Join(chunks, "")), stripSpace(text); got != want {
			t.Fatalf("SplitText(%q, %d) = %q: text lost or reordered", text, max, chunks)
		}
	}
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

func TestSplitTextLongMessage(t *testing.T) {
	para := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 30) // 1710 runes
	text := para + "\n\n" + para + "\n\n" + para
	chunks := SplitText(text, MaxTextLength)
	if len(chunks) != 3 {
		t.Fatalf("%d chunks, want one per paragraph", len(chunks))
	}
	for _, c := range chunks {
		// Only whitespace at breaks is dropped; the text's own trailing space stays.
		if strings.TrimSpace(c) != strings.TrimSpace(para) {
			t.Errorf("chunk is not the paragraph: %.60q...", c)
		}
	}
}

// Issue 6, defect 7: Meta counts UTF-16 code units. 2,000 emoji are 4,000
// units: two messages, each within the limit, never half a surrogate pair.
func TestSplitTextCountsUTF16Units(t *testing.T) {
	text := strings.Repeat("😀", 2000)
	if n := TextLength(text); n != 4000 {
		t.Fatalf("TextLength(2,000 emoji) = %d, want 4000", n)
	}
	parts := SplitText(text, MaxTextLength)
	if len(parts) != 2 || strings.Join(parts, "") != text {
		t.Fatalf("2,000 emoji split into %d parts (rejoined equal: %v), want 2", len(parts), strings.Join(parts, "") == text)
	}
	for i, p := range parts {
		if n := TextLength(p); n > MaxTextLength || !utf8.ValidString(p) {
			t.Errorf("part %d: %d units (valid UTF-8: %v), want at most %d", i, n, utf8.ValidString(p), MaxTextLength)
		}
	}
	if n := TextLength("é e\u0301 中文 🇫🇷"); n != 12 {
		t.Errorf("TextLength = %d, want 12", n)
	}
	// An odd limit never splits a surrogate pair.
	for _, p := range SplitText(strings.Repeat("😀", 5), 3) {
		if p != "😀" {
			t.Errorf("part %q with a limit of 3 units, want one emoji each", p)
		}
	}
}

// Issue 6, defect 7: a text Meta would refuse (over 2,000 UTF-16 units, not
// runes) is refused before it is sent; 2,000 units go out.
func TestSendRefusesTextOverMetasLimit(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"recipient_id":"7","message_id":"m_1"}`)
	send := func(text string) error {
		_, err := c.Send(context.Background(), testAuth, SendRequest{Recipient: Recipient{ID: "7"}, MessagingType: MessagingTypeResponse, Message: &OutMessage{Text: text}})
		return err
	}
	if err := send(strings.Repeat("😀", 1001)); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("1,001 emoji (2,002 units): %v, want ErrInvalidRequest", err)
	}
	if rec.method != "" {
		t.Fatalf("the refused text reached Meta")
	}
	if err := send(strings.Repeat("😀", 1000)); err != nil {
		t.Fatalf("1,000 emoji (2,000 units): %v", err)
	}
	if err := send(strings.Repeat("ä", 2000)); err != nil {
		t.Fatalf("2,000 BMP characters: %v", err)
	}
}
