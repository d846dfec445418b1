"""Models tests. (Its presence also puts this folder on sys.path, for the tiny_lms helper.)"""
