package routing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// queues is a queueExists over a fixed set of ids.
func queues(ids ...string) func(string) bool {
	return func(id string) bool { return slices.Contains(ids, id) }
}

func cond(field, op, value string, values ...string) Condition {
	return Condition{Field: field, Operator: op, Value: value, Values: values}
}

func TestValidateRulesRefusesEachKindOfInvalidRule(t *testing.T) {
	ok := Rule{Name: "ok", QueueID: "billing", Conditions: []Condition{cond(FieldLocale, OpEquals, "fr_FR")}}
	with := func(f func(r *Rule)) []Rule {
		r := ok
		r.Conditions = slices.Clone(ok.Conditions)
		f(&r)
		return []Rule{ok, r}
	}
	withCond := func(c Condition) []Rule {
		return with(func(r *Rule) { r.Conditions = []Condition{cond(FieldPage, OpExists, ""), c} })
	}
	many := func(n int, c Condition) []Condition {
		out := make([]Condition, n)
		for i := range out {
			out[i] = c
		}
		return out
	}
	tooMany := make([]Rule, MaxRules+1)
	for i := range tooMany {
		tooMany[i] = ok
	}
	for _, tc := range []struct {
		what    string
		rules   []Rule
		index   int
		field   string
		message string // a part of the message
	}{
		{"no name", with(func(r *Rule) { r.Name = "" }), 1, "name", "is required"},
		{"blank name", with(func(r *Rule) { r.Name = "  \t" }), 1, "name", "is required"},
		{"name too long", with(func(r *Rule) { r.Name = strings.Repeat("é", MaxRuleNameLength+1) }), 1, "name", "at most 200 characters"},
		{"no conditions", with(func(r *Rule) { r.Conditions = nil }), 1, "conditions", "at least one condition"},
		{"too many conditions", with(func(r *Rule) { r.Conditions = many(MaxConditions+1, ok.Conditions[0]) }), 1, "conditions", "at most 20 conditions"},
		{"no queue", with(func(r *Rule) { r.QueueID = "" }), 1, "queue", "is required"},
		{"unknown queue", with(func(r *Rule) { r.QueueID = "gone" }), 1, "queue", `no queue "gone"`},
		{"no field", withCond(cond("", OpExists, "")), 1, "conditions[1].field", "is required"},
		{"unknown field", withCond(cond("country", OpEquals, "FR")), 1, "conditions[1].field", `unknown field "country": use page, locale`},
		{"field case", withCond(cond("Locale", OpEquals, "FR")), 1, "conditions[1].field", `unknown field "Locale"`},
		{"survey without id", withCond(cond("survey.", OpExists, "")), 1, "conditions[1].field", "needs a question id"},
		{"survey with a blank id", withCond(cond("survey. ", OpExists, "")), 1, "conditions[1].field", "needs a question id"},
		{"survey with an invalid id", withCond(cond("survey.Topic!", OpExists, "")), 1, "conditions[1].field", "lowercase letters"},
		{"no operator", withCond(cond(FieldLocale, "", "fr")), 1, "conditions[1].operator", "is required: use equals, contains, matches, in or exists"},
		{"unknown operator", withCond(cond(FieldLocale, "like", "fr%")), 1, "conditions[1].operator", `unknown operator "like": use equals, contains, matches, in or exists`},
		{"operator case", withCond(cond(FieldLocale, "EQUALS", "fr")), 1, "conditions[1].operator", `unknown operator "EQUALS"`},
		{"equals without value", withCond(cond(FieldLocale, OpEquals, "")), 1, "conditions[1].value", "is required with operator equals"},
		{"contains without value", withCond(cond(FieldFirstMessage, OpContains, "")), 1, "conditions[1].value", "is required with operator contains"},
		{"matches without value", withCond(cond(FieldFirstMessage, OpMatches, "")), 1, "conditions[1].value", "is required with operator matches"},
		{"equals with values", withCond(cond(FieldLocale, OpEquals, "fr", "de")), 1, "conditions[1].values", "is only for operator in"},
		{"matches with values", withCond(cond(FieldLocale, OpMatches, "fr", "de")), 1, "conditions[1].values", "is only for operator in"},
		{"bad regexp", withCond(cond(FieldFirstMessage, OpMatches, "(unclosed")), 1, "conditions[1].value", "not a valid regular expression"},
		{"perl-only regexp", withCond(cond(FieldFirstMessage, OpMatches, `(?=lookahead)`)), 1, "conditions[1].value", "RE2"},
		{"backreference", withCond(cond(FieldFirstMessage, OpMatches, `(a)\1`)), 1, "conditions[1].value", "not a valid regular expression"},
		{"regexp too long", withCond(cond(FieldFirstMessage, OpMatches, strings.Repeat("a", MaxPatternLength+1))), 1, "conditions[1].value", "at most 1000 characters"},
		{"in without values", withCond(cond(FieldLocale, OpIn, "")), 1, "conditions[1].values", "is required with operator in"},
		{"in with an empty list", withCond(Condition{Field: FieldLocale, Operator: OpIn, Values: []string{}}), 1, "conditions[1].values", "is required with operator in"},
		{"in with value", withCond(cond(FieldLocale, OpIn, "fr", "fr")), 1, "conditions[1].value", "is not for operator in"},
		{"in with an empty value", withCond(cond(FieldLocale, OpIn, "", "fr", "")), 1, "conditions[1].values[1]", "must not be empty"},
		{"exists with value", withCond(cond(FieldLocale, OpExists, "fr")), 1, "conditions[1].value", "is not for operator exists"},
		{"exists with values", withCond(cond(FieldLocale, OpExists, "", "fr")), 1, "conditions[1].values", "is not for operator exists"},
		{"too many rules", tooMany, MaxRules, "", "at most 100 rules"},
		// The first error wins: in rule order, then name, conditions, queue.
		{"first rule first", []Rule{{Name: "a", QueueID: "gone", Conditions: ok.Conditions}, {QueueID: "billing", Conditions: ok.Conditions}}, 0, "queue", "no queue"},
		{"name before queue", with(func(r *Rule) { r.Name, r.QueueID = "", "" }), 1, "name", "is required"},
		{"conditions before queue", with(func(r *Rule) { r.Conditions, r.QueueID = nil, "gone" }), 1, "conditions", "at least one"},
		{"earlier condition first", with(func(r *Rule) {
			r.Conditions = []Condition{cond(FieldLocale, "like", "x"), cond("country", OpExists, "")}
		}), 1, "conditions[0].operator", "unknown operator"},
		{"field before operator", withCond(cond("country", "like", "x")), 1, "conditions[1].field", "unknown field"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			err := ValidateRules(tc.rules, queues("billing", "tech"))
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("ValidateRules = %v, want a *RuleError", err)
			}
			if re.Index != tc.index || re.Field != tc.field || !strings.Contains(re.Message, tc.message) {
				t.Fatalf("ValidateRules = {%d %q %q}, want {%d %q ...%q...}", re.Index, re.Field, re.Message, tc.index, tc.field, tc.message)
			}
			if strings.Contains(re.Message, "%!") {
				t.Fatalf("message %q is badly formatted", re.Message)
			}
		})
	}
}

func TestValidateRulesAcceptsEveryFieldAndOperator(t *testing.T) {
	var conds []Condition
	for _, f := range append(slices.Clone(knownFields), "survey.topic") {
		conds = append(conds, cond(f, OpExists, ""))
	}
	for i := len(conds); i < MaxConditions; i++ {
		conds = append(conds, cond(fmt.Sprintf("survey.q%d", i), OpExists, ""))
	}
	rules := []Rule{
		{Name: "every field", QueueID: "billing", Conditions: conds[:MaxConditions]},
		{Name: "every operator", QueueID: "tech", Conditions: []Condition{
			cond(FieldLocale, OpEquals, "fr_FR"),
			cond(FieldFirstMessage, OpContains, "invoice"),
			cond(FieldFirstMessage, OpMatches, `(?i)\b(router|wi-?fi)\b`),
			cond(FieldReferralRef, OpIn, "", "promo", "ad-42"),
			cond("survey.topic", OpExists, ""),
		}},
		{Name: strings.Repeat("é", MaxRuleNameLength), QueueID: "tech", Conditions: []Condition{
			cond(FieldFirstMessage, OpMatches, strings.Repeat("a", MaxPatternLength)),
		}},
	}
	if err := ValidateRules(rules, queues("billing", "tech")); err != nil {
		t.Fatalf("ValidateRules = %v, want nil", err)
	}
	if err := ValidateRules(nil, queues()); err != nil {
		t.Fatalf("ValidateRules(no rules) = %v, want nil", err)
	}
	full := make([]Rule, MaxRules)
	for i := range full {
		full[i] = rules[1]
	}
	if err := ValidateRules(full, queues("billing", "tech")); err != nil {
		t.Fatalf("ValidateRules(%d rules) = %v, want nil", MaxRules, err)
	}
}

func TestCandidatesRoutesConversationsByRuleSet(t *testing.T) {
	rules := []Rule{
		{Name: "VIP by referral", QueueID: "vip", Conditions: []Condition{
			cond(FieldReferralRef, OpIn, "", "VIP-2026", "gold"),
		}},
		{Name: "French billing", QueueID: "billing-fr", Conditions: []Condition{
			cond(FieldLocale, OpIn, "", "fr_FR", "fr_BE", "fr_CA"),
			cond(FieldFirstMessage, OpMatches, `(?i)factur|invoice|rembours`),
		}},
		{Name: "Billing", QueueID: "billing", Conditions: []Condition{
			cond(FieldFirstMessage, OpContains, "invoice"),
		}},
		{Name: "Tech", QueueID: "tech", Conditions: []Condition{
			cond(FieldFirstMessage, OpMatches, `(?i)\b(router|wi-?fi|internet)\b`),
		}},
		{Name: "Survey says billing", QueueID: "billing", Conditions: []Condition{
			cond("survey.topic", OpEquals, "billing"),
		}},
		{Name: "Ads campaign", QueueID: "sales", Conditions: []Condition{
			cond(FieldReferralSrc, OpEquals, "ADS"),
			cond(FieldCustomerName, OpExists, ""),
		}},
		{Name: "Second page", QueueID: "page2", Conditions: []Condition{
			cond(FieldPage, OpEquals, "page-2"),
		}},
		{Name: "Test customer", QueueID: "qa", Conditions: []Condition{
			cond(FieldPSID, OpEquals, "psid-test"),
		}},
	}
	if err := ValidateRules(rules, queues("vip", "billing-fr", "billing", "tech", "sales", "page2", "qa")); err != nil {
		t.Fatalf("the rule set is invalid: %v", err)
	}
	for _, tc := range []struct {
		what string
		c    Context
		want []string
	}{
		{"nothing known", Context{PageRef: "page-1", PSID: "p1"}, nil},
		{"English invoice", Context{PageRef: "page-1", PSID: "p1", Locale: "en_US", FirstMessage: "Where is my INVOICE?"}, []string{"billing"}},
		{"French invoice", Context{PageRef: "page-1", PSID: "p1", Locale: "fr_FR", FirstMessage: "Ma facture est fausse"}, []string{"billing-fr"}},
		{"French locale lowercased", Context{PageRef: "page-1", PSID: "p1", Locale: "FR_fr", FirstMessage: "invoice please"}, []string{"billing-fr", "billing"}},
		{"French, about wifi", Context{PageRef: "page-1", PSID: "p1", Locale: "fr_FR", FirstMessage: "Mon wifi ne marche pas"}, []string{"tech"}},
		{"wifi inside a word is not wifi", Context{PageRef: "page-1", PSID: "p1", FirstMessage: "wifiless"}, nil},
		{"VIP with an invoice and a router", Context{PageRef: "page-1", PSID: "p1", ReferralRef: "vip-2026", FirstMessage: "invoice for my router"}, []string{"vip", "billing", "tech"}},
		{"survey answer", Context{PageRef: "page-1", PSID: "p1", Survey: map[string]string{"topic": "Billing"}}, []string{"billing"}},
		{"other survey question", Context{PageRef: "page-1", PSID: "p1", Survey: map[string]string{"subject": "billing"}}, nil},
		{"billing twice is listed once", Context{PageRef: "page-1", PSID: "p1", FirstMessage: "invoice", Survey: map[string]string{"topic": "billing"}}, []string{"billing"}},
		{"ads with a name", Context{PageRef: "page-1", PSID: "p1", ReferralSource: "ads", CustomerName: "Ada"}, []string{"sales"}},
		{"ads without a name", Context{PageRef: "page-1", PSID: "p1", ReferralSource: "ads"}, nil},
		{"second page", Context{PageRef: "page-2", PSID: "p1"}, []string{"page2"}},
		{"test customer on the second page", Context{PageRef: "page-2", PSID: "PSID-TEST", FirstMessage: "internet down"}, []string{"tech", "page2", "qa"}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			if got := Candidates(rules, tc.c); !slices.Equal(got, tc.want) {
				t.Fatalf("Candidates = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConditionOperators(t *testing.T) {
	c := Context{PageRef: "p", PSID: "123", Locale: "de_DE", FirstMessage: "Hello Wörld, ÉTÉ", Survey: map[string]string{"q": "Yes"}}
	for _, tc := range []struct {
		cond Condition
		want bool
	}{
		{cond(FieldLocale, OpEquals, "DE_de"), true},
		{cond(FieldLocale, OpEquals, "de"), false},
		{cond(FieldFirstMessage, OpContains, "wÖRLD"), true},
		{cond(FieldFirstMessage, OpContains, "été"), true},
		{cond(FieldFirstMessage, OpContains, "mars"), false},
		{cond(FieldFirstMessage, OpMatches, `^Hello`), true},
		{cond(FieldFirstMessage, OpMatches, `^hello`), false}, // the raw value: case counts
		{cond(FieldFirstMessage, OpMatches, `(?i)^hello`), true},
		{cond(FieldFirstMessage, OpMatches, `(unclosed`), false}, // never saved, never matches
		{cond(FieldLocale, OpIn, "", "fr_FR", "DE_DE"), true},
		{cond(FieldLocale, OpIn, "", "fr_FR"), false},
		{cond(FieldLocale, OpExists, ""), true},
		{cond("survey.q", OpEquals, "yes"), true},
		{cond("survey.q", OpExists, ""), true},
		{cond("survey.other", OpExists, ""), false},
		{cond(FieldSurveyTimedOut, OpExists, ""), false}, // not timed out
		// Unknown values match nothing, whatever the operator.
		{cond(FieldCustomerName, OpExists, ""), false},
		{cond(FieldCustomerName, OpMatches, `.*`), false},
		{cond(FieldCustomerName, OpMatches, `^$`), false},
		{cond(FieldCustomerName, OpContains, "a"), false},
		{cond(FieldCustomerName, OpIn, "", "x"), false},
		{cond("survey.", OpExists, ""), false},
		{cond("country", OpExists, ""), false},
		{cond(FieldLocale, "like", "de%"), false},
	} {
		t.Run(fmt.Sprintf("%s %s %q%q", tc.cond.Field, tc.cond.Operator, tc.cond.Value, tc.cond.Values), func(t *testing.T) {
			rules := []Rule{{Name: "r", QueueID: "q", Conditions: []Condition{cond(FieldPage, OpExists, ""), tc.cond}}}
			if got := len(Candidates(rules, c)) == 1; got != tc.want {
				t.Fatalf("matched = %v, want %v", got, tc.want)
			}
		})
	}
}
