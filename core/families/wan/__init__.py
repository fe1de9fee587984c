"""core.families.wan"""
