"""core.families.unet"""
