/* SPDX-License-Identifier: MIT */
#ifndef FERRY_AS_H
#define FERRY_AS_H
#endif
