"""core.methods"""
