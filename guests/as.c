/* SPDX-License-Identifier: MIT */
#include "as.h"
int ferry_as_placeholder;
