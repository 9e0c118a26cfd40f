package routing

// FieldError is an invalid setting, named by its JSON path: from
// "operating_hours." for OperatingHours.Validate, from "overflow." for
// Overflow.Validate, and relative to the distribution object for
// Distribution.Validate ("offer_timeout",
// "routing_rules[2].conditions[0].operator"). The API answers it with a
// 400 naming Field. Err is the cause when there is one (the *RuleError of
// a routing rule), for errors.As.
type FieldError struct {
	Field   string
	Message string
	Err     error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func (e *FieldError) Unwrap() error { return e.Err }
