package routing

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits of a rule set, so that evaluating one stays cheap.
const (
	MaxRules          = 100
	MaxConditions     = 20  // per rule
	MaxRuleNameLength = 200 // characters
	MaxPatternLength  = 1000
)

var (
	knownFields = []string{FieldPage, FieldLocale, FieldCustomerName, FieldPSID, FieldFirstMessage, FieldReferralRef, FieldReferralSrc, FieldSurveyTimedOut}
	fieldList   = strings.Join(knownFields, ", ") + " or " + FieldSurveyPrefix + "<question id>"
)

func validateRules(rules []Rule, queueExists func(string) bool) error {
	if len(rules) > MaxRules {
		return &RuleError{Index: MaxRules, Message: fmt.Sprintf("is over the limit: a rule set has at most %d rules, got %d", MaxRules, len(rules))}
	}
	for i, r := range rules {
		if err := validateRule(r, queueExists); err != nil {
			err.Index = i
			return err
		}
	}
	return nil
}

func validateRule(r Rule, queueExists func(string) bool) *RuleError {
	bad := func(field, format string, args ...any) *RuleError {
		return &RuleError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	switch n := utf8.RuneCountInString(r.Name); {
	case strings.TrimSpace(r.Name) == "":
		return bad("name", "is required: a short label such as \"Billing in French\", shown in the conversation's routing history")
	case n > MaxRuleNameLength:
		return bad("name", "must be at most %d characters, got %d", MaxRuleNameLength, n)
	}
	switch n := len(r.Conditions); {
	case n == 0:
		return bad("conditions", "needs at least one condition (a rule without any would take every conversation: that is the fallback queue's job)")
	case n > MaxConditions:
		return bad("conditions", "must have at most %d conditions, got %d", MaxConditions, n)
	}
	for j, c := range r.Conditions {
		if err := validateCondition(fmt.Sprintf("conditions[%d]", j), c); err != nil {
			return err
		}
	}
	switch {
	case r.QueueID == "":
		return bad("queue", "is required: the id of the queue the rule sends conversations to (GET /api/v1/queues lists them)")
	case queueExists != nil && !queueExists(r.QueueID):
		return bad("queue", "no queue %q (GET /api/v1/queues lists them)", r.QueueID)
	}
	return nil
}

func validateCondition(path string, c Condition) *RuleError {
	bad := func(field, format string, args ...any) *RuleError {
		return &RuleError{Field: path + "." + field, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.Field == "":
		return bad("field", "is required: use %s", fieldList)
	case strings.HasPrefix(c.Field, FieldSurveyPrefix):
		if id := strings.TrimPrefix(c.Field, FieldSurveyPrefix); !ValidQuestionID(id) {
			return bad("field", "needs a question id after %q, such as \"survey.topic\" (%s)", FieldSurveyPrefix, QuestionIDRule)
		}
	case !slices.Contains(knownFields, c.Field):
		return bad("field", "unknown field %q: use %s", c.Field, fieldList)
	}
	switch c.Operator {
	case OpEquals, OpContains, OpMatches:
		if c.Value == "" {
			return bad("value", "is required with operator %s", c.Operator)
		}
		if len(c.Values) > 0 {
			return bad("values", "is only for operator %s: operator %s takes one value", OpIn, c.Operator)
		}
		if c.Operator == OpMatches {
			if n := utf8.RuneCountInString(c.Value); n > MaxPatternLength {
				return bad("value", "must be at most %d characters, got %d", MaxPatternLength, n)
			}
			if _, err := regexp.Compile(c.Value); err != nil {
				return bad("value", "is not a valid regular expression (RE2 syntax, as in Go): %v", err)
			}
		}
	case OpIn:
		if c.Value != "" {
			return bad("value", "is not for operator %s: list the accepted values in values", OpIn)
		}
		if len(c.Values) == 0 {
			return bad("values", "is required with operator %s: a list of accepted values such as [\"fr\", \"fr_FR\"]", OpIn)
		}
		for k, v := range c.Values {
			if v == "" {
				return bad(fmt.Sprintf("values[%d]", k), "must not be empty (an unknown field matches nothing: use operator %s to test that it is known)", OpExists)
			}
		}
	case OpExists:
		if c.Value != "" || len(c.Values) > 0 {
			field := "value"
			if c.Value == "" {
				field = "values"
			}
			return bad(field, "is not for operator %s, which only tests that the field is known and not empty", OpExists)
		}
	case "":
		return bad("operator", "is required: use equals, contains, matches, in or exists")
	default:
		return bad("operator", "unknown operator %q: use equals, contains, matches, in or exists", c.Operator)
	}
	return nil
}

func candidates(rules []Rule, c Context) []string {
	var out []string
	// Compiled once per call: a pattern may appear in several rules.
	patterns := map[string]*regexp.Regexp{}
	for _, r := range rules {
		// A rule without conditions matches nothing: validation refuses
		// it, and taking everything is the fallback queue's job.
		if len(r.Conditions) == 0 || r.QueueID == "" || slices.Contains(out, r.QueueID) {
			continue
		}
		ok := true
		for _, cond := range r.Conditions {
			if !holds(cond, c, patterns) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, r.QueueID)
		}
	}
	return out
}

// holds tells whether cond holds for c. An unknown ("") value satisfies
// no operator, and a broken condition (never saved: validation refuses
// it) never holds.
func holds(cond Condition, c Context, patterns map[string]*regexp.Regexp) bool {
	v := fieldValue(c, cond.Field)
	if v == "" {
		return false
	}
	switch cond.Operator {
	case OpExists:
		return true
	case OpEquals:
		return cond.Value != "" && strings.EqualFold(v, cond.Value)
	case OpContains:
		return cond.Value != "" && strings.Contains(strings.ToLower(v), strings.ToLower(cond.Value))
	case OpIn:
		for _, w := range cond.Values {
			if w != "" && strings.EqualFold(v, w) {
				return true
			}
		}
	case OpMatches:
		re, seen := patterns[cond.Value]
		if !seen {
			if len(cond.Value) <= 4*MaxPatternLength {
				re, _ = regexp.Compile(cond.Value) // nil when invalid
			}
			patterns[cond.Value] = re
		}
		return re != nil && re.MatchString(v)
	}
	return false
}

func fieldValue(c Context, field string) string {
	switch field {
	case FieldPage:
		return c.PageRef
	case FieldLocale:
		return c.Locale
	case FieldCustomerName:
		return c.CustomerName
	case FieldPSID:
		return c.PSID
	case FieldFirstMessage:
		return c.FirstMessage
	case FieldReferralRef:
		return c.ReferralRef
	case FieldReferralSrc:
		return c.ReferralSource
	case FieldSurveyTimedOut:
		if c.SurveyTimedOut {
			return "true"
		}
		return ""
	}
	if id, ok := strings.CutPrefix(field, FieldSurveyPrefix); ok && id != "" {
		return c.Survey[id]
	}
	return ""
}
