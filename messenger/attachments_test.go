package messenger

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

var (
	pngBytes  = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 64)...)
	jpegBytes = append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), make([]byte, 64)...)
	pdfBytes  = []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n")
	zipBytes  = append([]byte("PK\x03\x04\x14\x00\x06\x00"), make([]byte, 64)...)
	mp4Bytes  = append([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), make([]byte, 64)...)
	exeBytes  = append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), make([]byte, 64)...)
	elfBytes  = append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...)
)

func TestDetectFile(t *testing.T) {
	for _, c := range []struct {
		name                     string
		head                     []byte
		declared, filename, want string
		typ, contentType         string // empty typ: refused
	}{
		{name: "png by its bytes", head: pngBytes, filename: "a.png", typ: "image", contentType: "image/png"},
		{name: "png declared", head: pngBytes, declared: "image/png", typ: "image", contentType: "image/png"},
		{name: "jpg alias", head: jpegBytes, declared: "image/jpg; name=x.jpg", typ: "image", contentType: "image/jpeg"},
		{name: "image asked as a file", head: pngBytes, declared: "image/png", want: "file", typ: "file", contentType: "image/png"},
		{name: "octet-stream says nothing", head: pdfBytes, declared: "application/octet-stream", typ: "file", contentType: "application/pdf"},
		{name: "pdf", head: pdfBytes, declared: "application/pdf", typ: "file", contentType: "application/pdf"},
		{name: "docx is a zip", head: zipBytes, declared: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", typ: "file", contentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{name: "csv is text", head: []byte("a,b\n1,2\n"), declared: "text/csv", typ: "file", contentType: "text/csv"},
		{name: "a text starting MZ is text", head: []byte("MZ Transport, invoice 42\n"), declared: "text/plain", typ: "file", contentType: "text/plain"},
		{name: "mp4 video", head: mp4Bytes, declared: "video/mp4", typ: "video", contentType: "video/mp4"},
		{name: "m4a in an mp4 container", head: mp4Bytes, declared: "audio/x-m4a", typ: "audio", contentType: "audio/mp4"},
		{name: "mp3 without an ID3 tag", head: []byte{0xff, 0xfb, 0x90, 0x64, 0x00, 0x01, 0x02}, declared: "audio/mpeg", typ: "audio", contentType: "audio/mpeg"},
		{name: "old .doc (not sniffable)", head: []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00"), declared: "application/msword", typ: "file", contentType: "application/msword"},
		{name: "bmp goes as a file", head: append([]byte("BM"), make([]byte, 64)...), typ: "file", contentType: "image/bmp"},
		{name: "bmp cannot be an image", head: append([]byte("BM"), make([]byte, 64)...), want: "image"},
		{name: "pdf cannot be an image", head: pdfBytes, declared: "application/pdf", want: "image"},
		{name: "windows program", head: exeBytes, filename: "setup.bin"},
		{name: "windows program declared", head: []byte("anything"), declared: "application/x-msdownload"},
		{name: "windows program disguised", head: exeBytes, declared: "image/png"},
		{name: "linux program", head: elfBytes},
		{name: "script", head: []byte("#!/bin/sh\nrm -rf /\n"), declared: "text/plain"},
		{name: "exe by its name", head: []byte("hello"), filename: "invoice.pdf.EXE"},
		{name: "png declared, pdf bytes", head: pdfBytes, declared: "image/png"},
		{name: "pdf declared, unknown bytes", head: []byte{0, 1, 2, 3, 4, 5}, declared: "application/pdf"},
		{name: "png declared, text bytes", head: []byte("not an image"), declared: "image/png"},
		{name: "unknown attachment type", head: pngBytes, want: "sticker"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DetectFile(c.head, c.declared, c.filename, c.want)
			if c.typ == "" {
				if !IsFileTypeError(err) || !strings.Contains(err.Error(), AcceptedTypesText) {
					t.Fatalf("DetectFile = %+v, %v; want a FileTypeError saying what is accepted", got, err)
				}
				return
			}
			if err != nil || got.Type != c.typ || got.ContentType != c.contentType {
				t.Fatalf("DetectFile = %+v, %v; want %s %s", got, err, c.typ, c.contentType)
			}
		})
	}
}

// The upload is Meta's documented multipart form: message with the type and
// is_reusable, the bytes as filedata with their type, the page token and
// appsecret_proof in the query; the answer's attachment_id comes back.
func TestUploadAttachment(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"attachment_id":"1857777774821032"}`)
	data := make([]byte, 70000)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	id, err := c.UploadAttachment(context.Background(), testAuth, UploadFile{
		Type: "image", ContentType: "image/png", Filename: `sh"irt.png`, Size: int64(len(data)), Body: bytes.NewReader(data),
	})
	if err != nil || id != "1857777774821032" {
		t.Fatalf("UploadAttachment = %q, %v", id, err)
	}
	if rec.method != http.MethodPost || rec.path != "/v25.0/123/message_attachments" {
		t.Errorf("%s %s", rec.method, rec.path)
	}
	assertPageAuth(t, rec.query)
	mt, params, err := mime.ParseMediaType(rec.contentType)
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("content type %q", rec.contentType)
	}
	mr := multipart.NewReader(bytes.NewReader(rec.body), params["boundary"])
	parts := map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts[p.FormName()] = b
		if p.FormName() == "filedata" && (p.FileName() != `sh"irt.png` || p.Header.Get("Content-Type") != "image/png") {
			t.Errorf("filedata part: name %q, type %q", p.FileName(), p.Header.Get("Content-Type"))
		}
	}
	if got := string(parts["message"]); got != `{"attachment":{"payload":{"is_reusable":true},"type":"image"}}` {
		t.Errorf("message = %s", got)
	}
	if !bytes.Equal(parts["filedata"], data) {
		t.Errorf("filedata: %d bytes, not the file's %d", len(parts["filedata"]), len(data))
	}
}

func TestUploadAttachmentErrors(t *testing.T) {
	c, _ := fakeGraph(t, 400, `{"error":{"message":"(#100) Attachment size exceeds allowable limit","type":"OAuthException","code":100,"error_subcode":2018109,"fbtrace_id":"X"}}`)
	ctx := context.Background()
	_, err := c.UploadAttachment(ctx, testAuth, UploadFile{Type: "file", Size: 3, Body: strings.NewReader("abc")})
	ge, ok := AsGraphError(err)
	if !ok || ge.Code != 100 || ge.Subcode != 2018109 || ge.Class() != ClassInvalidParameter || strings.Contains(err.Error(), testToken) {
		t.Errorf("Meta's refusal: %v", err)
	}
	for name, f := range map[string]UploadFile{
		"unknown type": {Type: "sticker", Body: strings.NewReader("x")},
		"no body":      {Type: "file"},
		"too large":    {Type: "file", Size: MaxAttachmentSize + 1, Body: strings.NewReader("x")},
	} {
		if _, err := c.UploadAttachment(ctx, testAuth, f); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
		}
	}
	ok200, _ := fakeGraph(t, 200, `{}`)
	if _, err := ok200.UploadAttachment(ctx, testAuth, UploadFile{Type: "file", Size: -1, Body: strings.NewReader("abc")}); !errors.Is(err, ErrUnexpectedResponse) {
		t.Errorf("no attachment_id: %v, want ErrUnexpectedResponse", err)
	}
}

func TestByteSizeRoundsUp(t *testing.T) {
	for n, want := range map[int64]string{
		MaxAttachmentSize:     "25.0 MB (26214400 bytes)",
		MaxAttachmentSize + 1: "25.1 MB (26214401 bytes)",
		1 << 30:               "1024.0 MB (1073741824 bytes)",
		0:                     "0.0 MB (0 bytes)",
	} {
		if got := ByteSize(n); got != want {
			t.Errorf("ByteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
