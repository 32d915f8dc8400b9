print("adwb")
