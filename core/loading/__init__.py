"""core.loading"""
