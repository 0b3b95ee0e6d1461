"""tasks/tracr"""
