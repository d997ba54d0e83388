"""The onboarding workflows: organization bootstrap (a saga) and invitation lifecycle."""
