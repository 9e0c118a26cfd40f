package api

import (
	"bytes"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"parley/store"
)

// The customer's page of a link survey (issue 9): Parley sends the link
// /survey/<token> when the conversation ends; the token is the only key,
// so the page needs no API key and never logs the token.

// surveyLink is a survey link's token in a message Parley sent.
var surveyLink = regexp.MustCompile(`(/survey/)[A-Za-z0-9_-]{40,}`)

// hideSurveyLink hides the token of a survey link that Parley sent: the
// transcript is the agent's, the survey the customer's to answer.
func hideSurveyLink(sender, text string) string {
	if sender != "system" || !strings.Contains(text, "/survey/") {
		return text
	}
	return surveyLink.ReplaceAllString(text, "${1}(the customer's link)")
}

// maxSurveyFormBytes bounds the answer's form.
const maxSurveyFormBytes = 16 << 10

//go:embed survey_page.html
var surveyPageHTML string

var surveyPageTemplate = template.Must(template.New("survey").Parse(surveyPageHTML))

// registerSurveyPage adds the public survey page to the root router.
func (s *Server) registerSurveyPage(e *echo.Echo) {
	e.GET("/survey/:token", s.surveyPage)
	e.HEAD("/survey/:token", s.surveyPage)
	e.POST("/survey/:token", s.answerSurveyPage)
}

// surveyPageData fills survey_page.html: the form, or a message.
type surveyPageData struct {
	Title      string
	Form       bool
	Error      string
	Ratings    []surveyRating
	Comment    string
	MaxComment int
	Message    string
}

type surveyRating struct {
	Value   int
	Label   string
	Checked bool
}

// The pages' wording.
const (
	surveyInvalidLink   = "This survey link is not valid."
	surveyExpired       = "This survey has expired."
	surveyAlreadyDone   = "You have already answered this survey. Thank you!"
	surveyThanks        = "Thank you for your feedback"
	surveyRecorded      = "Your answer has been recorded. You can close this page."
	surveyChooseRating  = "Please choose a rating from 1 to 5."
	surveyUnavailable   = "Sorry, something went wrong. Please try again in a moment."
	surveyCommentTooBig = "Your comment is too long: please keep it under 2000 characters."
	surveyFormTooBig    = "Your answer is too long."
)

func surveyForm(errMsg, comment string, rating int) surveyPageData {
	d := surveyPageData{Title: "How would you rate the help you received?", Form: true, Error: errMsg, Comment: comment,
		MaxComment: store.MaxSurveyComment}
	for v := 1; v <= 5; v++ {
		label := strconv.Itoa(v)
		switch v {
		case 1:
			label += " (poor)"
		case 5:
			label += " (excellent)"
		}
		d.Ratings = append(d.Ratings, surveyRating{Value: v, Label: label, Checked: v == rating})
	}
	return d
}

func surveyMessage(title, message string) surveyPageData {
	return surveyPageData{Title: title, Message: message}
}

// renderSurveyPage answers an HTML page that no cache, referrer or search
// engine keeps (the token is in the URL).
func (s *Server) renderSurveyPage(c echo.Context, status int, d surveyPageData) error {
	var buf bytes.Buffer
	if err := surveyPageTemplate.Execute(&buf, d); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Robots-Tag", "noindex")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	return c.HTMLBlob(status, buf.Bytes())
}

// surveyState is the page for a survey that cannot take an answer (ok
// false), or ok when it waits for one.
func (s *Server) surveyState(v store.Survey) (status int, d surveyPageData, ok bool) {
	switch v.Status {
	case store.SurveyAnswered:
		return http.StatusOK, surveyMessage(surveyAlreadyDone, ""), false
	case store.SurveyTimedOut:
		return http.StatusGone, surveyMessage(surveyExpired, ""), false
	case store.SurveySent:
		if v.ExpiresAt != nil && !v.ExpiresAt.After(s.opts.Now()) {
			return http.StatusGone, surveyMessage(surveyExpired, ""), false
		}
		return http.StatusOK, surveyForm("", "", 0), true
	default:
		return http.StatusNotFound, surveyMessage(surveyInvalidLink, ""), false
	}
}

// surveyPage shows the form, or where the survey stands.
func (s *Server) surveyPage(c echo.Context) error {
	ctx := c.Request().Context()
	v, err := s.opts.Store.SurveyByToken(ctx, c.Param("token"))
	if errors.Is(err, store.ErrNotFound) {
		return s.renderSurveyPage(c, http.StatusNotFound, surveyMessage(surveyInvalidLink, ""))
	}
	if err != nil {
		s.log.ErrorContext(ctx, "survey page: read the survey", "err", err)
		return s.renderSurveyPage(c, http.StatusServiceUnavailable, surveyMessage(surveyUnavailable, ""))
	}
	status, d, _ := s.surveyState(v)
	return s.renderSurveyPage(c, status, d)
}

// answerSurveyPage records the form's answer.
func (s *Server) answerSurveyPage(c echo.Context) error {
	ctx := c.Request().Context()
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxSurveyFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return s.renderSurveyPage(c, http.StatusRequestEntityTooLarge, surveyMessage(surveyFormTooBig, ""))
		}
		return s.renderSurveyPage(c, http.StatusBadRequest, surveyForm(surveyChooseRating, "", 0))
	}
	token := c.Param("token")
	v, err := s.opts.Store.SurveyByToken(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return s.renderSurveyPage(c, http.StatusNotFound, surveyMessage(surveyInvalidLink, ""))
	}
	if err != nil {
		s.log.ErrorContext(ctx, "survey page: read the survey", "err", err)
		return s.renderSurveyPage(c, http.StatusServiceUnavailable, surveyMessage(surveyUnavailable, ""))
	}
	if status, d, ok := s.surveyState(v); !ok {
		if v.Status == store.SurveyAnswered {
			status = http.StatusConflict
		}
		return s.renderSurveyPage(c, status, d)
	}
	comment := r.PostForm.Get("comment")
	rating, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("rating")))
	if err != nil || rating < 1 || rating > 5 {
		return s.renderSurveyPage(c, http.StatusBadRequest, surveyForm(surveyChooseRating, comment, 0))
	}
	answered, err := s.opts.Store.AnswerSurveyByToken(ctx, token, rating, comment)
	var fe *store.FieldError
	switch {
	case err == nil:
		s.log.InfoContext(ctx, "survey answered on its page", "conversation", answered.ConversationID,
			"workstream", answered.WorkstreamID, "rating", rating)
		return s.renderSurveyPage(c, http.StatusOK, surveyMessage(surveyThanks, surveyRecorded))
	case errors.As(err, &fe) && fe.Field == "comment":
		return s.renderSurveyPage(c, http.StatusBadRequest, surveyForm(surveyCommentTooBig, comment, rating))
	case errors.As(err, &fe):
		return s.renderSurveyPage(c, http.StatusBadRequest, surveyForm(surveyChooseRating, comment, 0))
	case errors.Is(err, store.ErrNotFound):
		return s.renderSurveyPage(c, http.StatusNotFound, surveyMessage(surveyInvalidLink, ""))
	case errors.Is(err, store.ErrSurveyExpired):
		return s.renderSurveyPage(c, http.StatusGone, surveyMessage(surveyExpired, ""))
	case errors.Is(err, store.ErrSurveyAnswered):
		return s.renderSurveyPage(c, http.StatusConflict, surveyMessage(surveyAlreadyDone, ""))
	default:
		s.log.ErrorContext(ctx, "survey page: record the answer", "conversation", v.ConversationID, "err", err)
		return s.renderSurveyPage(c, http.StatusServiceUnavailable, surveyMessage(surveyUnavailable, ""))
	}
}
