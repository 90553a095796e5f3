/* SPDX-License-Identifier: MIT */
#include "harness.h"
