package infisicaltest

// Sample credentials LoadSample registers. The read-only identity can read
// every project but write none.
const (
	SampleClientID             = "sample-client-id"
	SampleClientSecret         = "sample-client-secret"
	SampleReadOnlyClientID     = "sample-readonly-client-id"
	SampleReadOnlyClientSecret = "sample-readonly-client-secret"
)

// samplePEM is a made-up PEM-shaped multi-line value (not a real key).
const samplePEM = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDdemoDEMOdemo0
c2FtcGxlIGtleSBmb3IgdGhlIGluZmlzaWNhbGZzIGRldiBzZXJ2ZXIsIG5vdCBy
ZWFsLCBub3QgYSBzZWNyZXQsIGp1c3Qgc29tZSBieXRlcyB0byBsb29rIGF0Lg==
-----END PRIVATE KEY-----
`

// LoadSample fills the server with demo data: projects "webshop" and
// "payments" (dev, staging, prod), nested folders, about twenty secrets
// including a multi-line PEM-like value, a reference and an import. It
// registers a read-write identity (returned) and a read-only one
// (SampleReadOnlyClientID / SampleReadOnlyClientSecret).
func (s *Server) LoadSample() (clientID, clientSecret string) {
	shop := s.AddProject("webshop", "Web Shop")
	pay := s.AddProject("payments", "Payments")
	s.AddIdentity(SampleClientID, SampleClientSecret)
	s.AddIdentity(SampleReadOnlyClientID, SampleReadOnlyClientSecret)
	for _, p := range []string{shop, pay} {
		s.Grant(SampleClientID, p, PermReadWrite)
		s.Grant(SampleReadOnlyClientID, p, PermRead)
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		s.SetSecret(shop, env, "/", "DATABASE_URL", "postgres://shop:shop-"+env+"@db."+env+".internal:5432/shop")
		s.SetSecret(shop, env, "/", "LOG_LEVEL", map[string]string{"dev": "debug", "staging": "info", "prod": "warn"}[env])
		s.SetSecret(shop, env, "/", "FEATURE_FLAGS", "checkout-v2,wishlist")
		s.SetSecret(pay, env, "/", "STRIPE_API_KEY", "sk_test_demo_"+env+"_4eC39HqLyjWDarjtT1zdp7dc")
	}
	s.SetSecret(shop, "dev", "/", "API_URL", "http://localhost:8080")
	s.SetSecret(shop, "dev", "/", "API_HEALTH_URL", "${API_URL}/healthz")
	s.SetSecret(shop, "dev", "/backend", "REDIS_URL", "redis://cache.dev.internal:6379/0")
	s.SetSecret(shop, "dev", "/backend", "SESSION_SECRET", "dev-session-secret-change-me")
	s.SetSecret(shop, "dev", "/backend/workers", "QUEUE_CONCURRENCY", "8")
	s.SetSecret(shop, "dev", "/frontend", "PUBLIC_ANALYTICS_ID", "UA-000000-1")
	s.SetSecret(shop, "prod", "/tls", "TLS_KEY", samplePEM)
	s.SetSecret(shop, "prod", "/tls", "TLS_CERT_FINGERPRINT", "SHA256:3f:9a:11:c0:de")
	s.SetSecret(shop, "staging", "/shared", "SMTP_HOST", "smtp.staging.internal")
	s.SetSecret(shop, "staging", "/shared", "SMTP_PASSWORD", "staging-smtp-password")
	s.AddImport(shop, "dev", "/", "staging", "/shared")
	s.SetSecret(pay, "prod", "/webhooks", "WEBHOOK_SIGNING_SECRET", "whsec_demo_prod")
	s.AddFolder(pay, "dev", "/empty")
	return SampleClientID, SampleClientSecret
}
