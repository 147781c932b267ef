"""Admin: authentication and roles of admin credentials, delegation and revocation, the token registry, budget
changes (identity budgets too) and usage — the operations both admin front ends serve."""
