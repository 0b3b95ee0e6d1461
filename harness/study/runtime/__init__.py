"""study/runtime"""
