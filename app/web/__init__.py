"""What browsers need from the HTTP layer: CORS (same origins as websockets) and the live
dashboard's static files (examples/dashboard, served in development)."""
