package infisical

import "errors"

// Sentinel kinds. Every error the client returns for a failed call is an
// *APIError whose Unwrap gives exactly one of these, so callers use
// errors.Is(err, infisical.ErrNotFound) and never parse messages.
var (
	ErrNotFound         = errors.New("not found")
	ErrAlreadyExists    = errors.New("already exists")
	ErrPermissionDenied = errors.New("permission denied")
	ErrAuthFailed       = errors.New("authentication failed")
	ErrTokenExpired     = errors.New("access token expired")
	ErrRateLimited      = errors.New("rate limited")
	ErrServer           = errors.New("server error")
	ErrUnreachable      = errors.New("infisical unreachable")
	ErrValidation       = errors.New("validation failed")
	ErrApprovalPending  = errors.New("change awaits approval")
	ErrValueTooLarge    = errors.New("value too large")
)

// MaxValueSize is Infisical's request body limit (Fastify's default 1 MiB);
// a value that cannot fit in a request is refused before sending.
const MaxValueSize = 1 << 20
